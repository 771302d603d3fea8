#include "api/yaml_stream.h"

#include <gtest/gtest.h>

namespace tidegate::api {
namespace {

TEST(YamlStream, ReadsTheDocumentsLoadAllReads) {
  struct Case {
    const char* yaml;
    std::size_t documents;
  } cases[] = {
      {"", 0},
      {"# a comment only\n", 0},
      {"a: 1\n", 1},
      {"---\n---\n", 2},
      {"a: 1\n---\n---\nb: 2\n...\n", 3},
      {"%YAML 1.2\n---\nx\n", 1},
      {"--- a\n--- b\n--- c\n", 3},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.yaml);
    const auto docs = loadAllDocuments(c.yaml);
    EXPECT_EQ(docs.size(), c.documents);
    EXPECT_EQ(docs.size(), YAML::LoadAll(c.yaml).size());
  }
  const auto docs = loadAllDocuments("a: 1\n---\n- x\n");
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0]["a"].as<int>(), 1);
  EXPECT_EQ(docs[1][0].as<std::string>(), "x");
}

// yaml-cpp 0.7's LoadAll never returns on these (not called here for that reason).
TEST(YamlStream, ADocumentThatDoesNotAdvanceIsASyntaxError) {
  for (const char* yaml : {",", ",a", "a: 1\n---\n,"}) {
    SCOPED_TRACE(yaml);
    EXPECT_THROW(loadAllDocuments(yaml), YAML::ParserException);
  }
  try {
    loadAllDocuments("a: 1\n---\n,");
  } catch (const YAML::ParserException& e) {
    EXPECT_EQ(e.mark.line, 2);
  }
  // Syntax errors yaml-cpp finds itself are thrown as they are.
  EXPECT_THROW(loadAllDocuments("a: [1, 2\n"), YAML::ParserException);
}

}  // namespace
}  // namespace tidegate::api
