#include "server/response_writer.h"

#include <gtest/gtest.h>

namespace mlxs::server {
namespace {

TEST(ResponseWriter, AWholeResponseHasItsLengthAndConnection) {
  ResponseWriter w;
  w.begin(/*keep_alive=*/true, /*chunked=*/true);
  w.respond(404, "application/json", "{}", "Retry-After: 1\r\n");
  EXPECT_EQ(w.status(), 404);
  EXPECT_EQ(w.take(),
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
            "Retry-After: 1\r\nConnection: keep-alive\r\n\r\n{}");
  EXPECT_EQ(w.pending_bytes(), 0u);
  w.begin(true, true);
  w.close_after();
  w.respond(200, "text/plain", "ok");
  EXPECT_NE(w.take().find("Connection: close\r\n\r\nok"), std::string::npos);
  EXPECT_FALSE(w.keep_alive());
}

TEST(ResponseWriter, AStreamIsChunkedOnHttp11) {
  ResponseWriter w;
  w.begin(true, true);
  w.begin_stream();
  w.stream("data: x\n\n");
  w.stream("");  // nothing: an empty chunk would end the body
  w.end_stream();
  EXPECT_EQ(w.take(),
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
            "9\r\ndata: x\n\n\r\n0\r\n\r\n");
  EXPECT_TRUE(w.keep_alive());
}

TEST(ResponseWriter, AStreamOnHttp10EndsByClosing) {
  ResponseWriter w;
  w.begin(true, /*chunked=*/false);
  w.begin_stream();
  w.stream("data: x\n\n");
  w.end_stream();
  EXPECT_EQ(w.take(),
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            "Connection: close\r\n\r\ndata: x\n\n");
  EXPECT_FALSE(w.keep_alive());
}

}  // namespace
}  // namespace mlxs::server
