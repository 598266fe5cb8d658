// The request fields the generation dialects share, read through a BodyReader: the model, the
// sampling knobs, `stream`, `stop`, max_tokens, chat messages and the prompt they render to.
// Each reader records the first problem in the reader (a 400 naming the field, or a 404 for an
// unknown model) and leaves the request untouched from then on. Thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "mlxs/engine.h"
#include "server/body_reader.h"
#include "server/generation_request.h"

namespace mlxs::server {

// The served model named by "model" (required); null when it failed.
const ServedModel* read_model(BodyReader& r, const ModelLookup& models);
// temperature, top_p and top_k; with `openai` also min_p, the penalties, seed and
// stop_token_ids.
void read_sampling(BodyReader& r, GeneratorParams& p, bool openai);
// stream and stream_options.include_usage.
void read_stream(BodyReader& r, GenerationRequest& g);
// `name`: a string or an array of strings, appended to p.stop_sequences.
void read_stop(BodyReader& r, const std::string& name, GeneratorParams& p);
// max_tokens from `primary`, or from `alias` when that is given too (nullptr: none).
void read_max_tokens(BodyReader& r, GeneratorParams& p, const char* primary, const char* alias);
// The text of a message content: a string, null, or an array of {"type": "text"} parts.
std::optional<std::string> content_text(const nlohmann::json& content, const std::string& field,
                                        BodyReader& r);
// `messages` (required, non-empty) as ChatMessages. `openai`: user, assistant (with
// `tool_calls`), system and developer (as system), tool (with `tool_call_id`), and a `name` field;
// else Anthropic's user and assistant, whose content blocks may be tool_use (assistant) and
// tool_result (user: each becomes a "tool" message before the user's text).
std::optional<std::vector<ChatMessage>> chat_messages(const nlohmann::json* messages, bool openai,
                                                      BodyReader& r);
// The prompt's ids for `messages` and `tools` through the model's chat template (no special
// tokens added: the template has them). A final assistant message without tool calls (a
// prefill) is continued: the conversation before it gets the generation prompt, then its text
// follows.
std::optional<std::vector<int32_t>> chat_prompt(const Engine& engine, const ServedModel& m,
                                                std::vector<ChatMessage> messages,
                                                const std::vector<ToolDefinition>& tools,
                                                BodyReader& r);
// `text` tokenized for model `m`; an empty result is a 400 on "prompt".
std::optional<std::vector<int32_t>> tokenize_prompt(const Engine& engine, const ServedModel& m,
                                                    const std::string& text, bool add_special,
                                                    BodyReader& r);
// The last step of every dialect: the reader's error (or an unknown field) if any, else `g`
// with its prompt count set, checked by the engine's validation. `openai`: the engine's
// `stop_sequences` is named `stop` in its errors.
std::variant<GenerationRequest, ApiError> finish_request(BodyReader& r, GenerationRequest g,
                                                         bool openai);

}  // namespace mlxs::server

namespace mlxs::server {

// A 400 with code `context_length_exceeded` when the prompt and max_tokens (unset: one token)
// do not fit model `m`'s context, worded as each API words it (`openai`: "maximum context
// length ... tokens", else Anthropic's "prompt is too long: N tokens > M maximum"), `param`
// naming the prompt's field. Needs g's prompt set; nothing when the reader already failed.
void check_context_length(BodyReader& r, const ServedModel& m, const GenerationRequest& g,
                          bool openai, const std::string& param);
// `schema` (request field `field`) as p.structured: a JSON Schema object that the engine can
// enforce, else a 400 on `field`.
void read_json_schema(BodyReader& r, const nlohmann::json& schema, const std::string& field,
                      GeneratorParams& p);

}  // namespace mlxs::server
