#pragma once
// The live console: `/ui` on the admin address. One self-contained page — HTML, CSS and
// JavaScript compiled into the binary (console.cc), no external resource, no build step — that
// polls the admin API once a second and shows inference pools with each endpoint's queue,
// KV-cache use and in-flight requests; services with their replicas per node pool (owned or
// elastic; ready, starting, waiting for a node, draining); node pools with their nodes and cost
// so far; the last scaling decisions with their reasons; and request rate and TTFT over the
// last minutes (the charts are /admin/charts/*.svg, drawn by the same code as the reports).
//
// The token: the page itself holds no data, so it is served without the admin token. When a
// token is set, the page asks for it (or takes it from the URL's fragment, `/ui#token=...`,
// which browsers never send to a server, and removes it from the address bar), keeps it in the
// tab's sessionStorage, and sends it as `Authorization: Bearer` on each fetch of /admin/*.
// The token never appears in a request line, so no access log or proxy records it.
//
// Pure: returns constants.

#include <string_view>

#include "common/http_server.h"

namespace tidegate::gateway {

// The page (UTF-8 HTML).
std::string_view consolePage();
// Headers the page is served with: a Content-Security-Policy that lets it load nothing but its
// own inline script and style and fetch nothing but its own origin, and no framing.
http::Headers consoleHeaders();

}  // namespace tidegate::gateway
