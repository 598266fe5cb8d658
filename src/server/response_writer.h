// The one writer of HTTP/1.1 responses, used by every route: whole responses with a
// Content-Length, and event streams (SSE) sent chunked on HTTP/1.1 or delimited by closing the
// connection on HTTP/1.0. It only builds bytes; the connection writes what take() returns.
// Not thread-safe (one per connection, used on its strand).
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace mlxs::server {

class ResponseWriter {
 public:
  // A new exchange: `keep_alive` as the request asked (and the server allows), `chunked` when
  // the client speaks HTTP/1.1.
  void begin(bool keep_alive, bool chunked) {
    keep_alive_ = keep_alive;
    chunked_ = chunked;
    status_ = 0;
  }
  // The connection closes after this response (a refused body, shutdown, ...).
  void close_after() { keep_alive_ = false; }
  bool keep_alive() const { return keep_alive_; }
  int status() const { return status_; }  // of the response begun, 0 before

  // A whole response; `extra_headers` are complete "Name: value\r\n" lines.
  void respond(int status, std::string_view content_type, std::string_view body,
               std::string_view extra_headers = "");
  // The head of a 200 stream of `content_type`; on HTTP/1.0 the connection then closes after it.
  void begin_stream(std::string_view content_type = "text/event-stream");
  // Stream data (nothing when empty), then the end of the stream.
  void stream(std::string_view data);
  void end_stream();

  // The bytes built so far, handed over (and forgotten).
  std::string take() { return std::exchange(pending_, {}); }
  size_t pending_bytes() const { return pending_.size(); }

 private:
  std::string pending_;
  bool keep_alive_ = true, chunked_ = true;
  int status_ = 0;
};

// The reason phrase of an HTTP status ("Not Found"); "Unknown" for codes it does not know.
std::string_view reason_phrase(int status);

}  // namespace mlxs::server
