#pragma once
// Secrets: SHA-256 digests, random tokens and constant-time comparison (OpenSSL). API keys are
// only ever held as digests; a presented key is hashed and the digests compared in constant time,
// so neither the stored form nor the comparison reveals the secret. Thread-safe.

#include <optional>
#include <string>
#include <string_view>

namespace tidegate::crypto {

// SHA-256 of `data`: 32 raw bytes.
std::string sha256(std::string_view data);
// The same as 64 lowercase hex digits.
std::string sha256Hex(std::string_view data);
// Lowercase hex of raw bytes, and back (nullopt-like: empty string when `hex` is not valid hex).
std::string toHex(std::string_view bytes);
std::string fromHex(std::string_view hex);
// Standard base64 (RFC 4648 §4, with padding; whitespace ignored) to bytes; nullopt when
// `text` is not base64.
std::optional<std::string> base64Decode(std::string_view text);
// Bytes to standard base64 with padding, on one line (kubeconfig's *-data, Secrets' data).
std::string base64Encode(std::string_view bytes);
// SHA-1 as hex: only for naming things (Redis script ids), never for secrets.
std::string sha1Hex(std::string_view data);
// `bytes` bytes from the OS's CSPRNG, as lowercase hex (2 * bytes characters).
std::string randomHex(std::size_t bytes);
// True if a == b; time depends on the lengths only.
bool constantTimeEqual(std::string_view a, std::string_view b);

}  // namespace tidegate::crypto
