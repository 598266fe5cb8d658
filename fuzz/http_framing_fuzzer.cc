// Fuzzes the HTTP/1.1 framing the server reads requests with: the request line, headers, and
// Content-Length or chunked bodies, keep-alive and pipelining, as Session::read_request sets it
// up (Boost.Beast's request_parser<string_body>, body_limit = server.max_body_bytes, Beast's
// default 8 KiB header limit, one flat_buffer kept across requests) and then what the server
// does with a request before routing: the API-key headers (constant-time compare), the body's
// nesting check and JSON parse. Deterministic: the bytes come from an in-memory stream
// (beast::test::stream) in reads of 1..127 bytes or all at once, chosen by the first byte.
#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "util/constant_time.h"
#include "util/json_depth.h"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;

constexpr uint64_t kMaxBodyBytes = 8 * 1024 * 1024;  // server.max_body_bytes' default
constexpr int kMaxDepth = 64;                        // server.max_json_depth's default

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  boost::asio::io_context ioc;
  beast::test::stream stream(ioc, beast::string_view(bytes.data(), bytes.size()));
  stream.close_remote();  // the client sent everything, then half-closed: EOF after the bytes
  if (data[0] != 0 && data[0] < 128) stream.read_size(data[0]);
  beast::flat_buffer buffer;
  for (int exchange = 0; exchange < 64; ++exchange) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(kMaxBodyBytes);
    beast::error_code ec;
    http::read(stream, buffer, parser, ec);
    if (ec) break;
    http::request<http::string_body> req = parser.release();
    std::string_view target(req.target().data(), req.target().size());
    (void)target.substr(0, target.find('?'));
    (void)req.method_string();
    auto auth = req[http::field::authorization];
    if (auth.starts_with("Bearer ")) {
      (void)mlxs::constant_time_equal(std::string_view(auth.substr(7).data(), auth.size() - 7),
                                      "sk-test");
    }
    (void)mlxs::constant_time_equal(
        std::string_view(req["x-api-key"].data(), req["x-api-key"].size()), "sk-test");
    const std::string& body = req.body();
    if (mlxs::json_nesting_depth(body, kMaxDepth) <= kMaxDepth) {
      (void)nlohmann::json::parse(body, nullptr, false);
    }
    if (!req.keep_alive()) break;
  }
  return 0;
}
