#include "server/generation_request.h"

#include <chrono>

#include "server/dialect.h"

namespace mlxs::server {

ServedModel served_model_of(const ModelHandle& handle) {
  ServedModel m;
  m.id = handle.id;
  m.created = std::chrono::duration_cast<std::chrono::seconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  m.context_length = handle.context_length;
  m.has_chat_template = handle.has_chat_template;
  m.end_of_turn_ids = handle.end_of_turn_ids;
  m.chat_template_renders_tools = handle.chat_template_renders_tools;
  m.tool_call_format = handle.tool_call_format;
  m.architecture = handle.architecture;
  m.num_parameters = handle.num_parameters;
  m.dtype = handle.dtype;
  return m;
}

std::variant<GenerationRequest, ApiError> parse_generation_request(ApiKind kind,
                                                                   const nlohmann::json& body,
                                                                   const ModelLookup& models,
                                                                   const Engine& engine) {
  return dialect_for(kind).parse(body, models, engine);
}

}  // namespace mlxs::server
