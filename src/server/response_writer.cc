#include "server/response_writer.h"

#include <fmt/format.h>

#include <boost/beast/http/status.hpp>

namespace mlxs::server {

std::string_view reason_phrase(int status) {
  auto reason = boost::beast::http::obsolete_reason(boost::beast::http::status(unsigned(status)));
  return {reason.data(), reason.size()};
}

void ResponseWriter::respond(int status, std::string_view content_type, std::string_view body,
                             std::string_view extra_headers) {
  status_ = status;
  pending_ += fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: {}\r\n\r\n",
      status, reason_phrase(status), content_type, body.size(), extra_headers,
      keep_alive_ ? "keep-alive" : "close");
  pending_ += body;
}

void ResponseWriter::begin_stream(std::string_view content_type) {
  status_ = 200;
  if (!chunked_) keep_alive_ = false;
  pending_ += "HTTP/1.1 200 OK\r\nContent-Type: ";
  pending_ += content_type;
  pending_ += "\r\nCache-Control: no-cache\r\n";
  if (chunked_) pending_ += "Transfer-Encoding: chunked\r\n";
  pending_ += keep_alive_ ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
}

void ResponseWriter::stream(std::string_view data) {
  if (data.empty()) return;
  if (chunked_) pending_ += fmt::format("{:x}\r\n", data.size());
  pending_ += data;
  if (chunked_) pending_ += "\r\n";
}

void ResponseWriter::end_stream() {
  if (chunked_) pending_ += "0\r\n\r\n";
}

}  // namespace mlxs::server
