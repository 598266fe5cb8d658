// UTF-8 helpers for the tokenizer: decoding, lossy repair, the GPT-2 byte<->char map, and the
// Unicode normalizations (through utf8proc). All functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mlxs::tok {

// Decodes one UTF-8 character at s[i] (s must be valid UTF-8 from i on); sets *len to its bytes.
uint32_t decode_utf8(std::string_view s, size_t i, int* len);
// Appends the UTF-8 encoding of code point `cp` to `out`.
void append_utf8(uint32_t cp, std::string& out);
// Number of bytes of the valid UTF-8 prefix of `s` that ends on a character boundary, or
// s.size() when all of it is valid.
size_t valid_utf8_prefix(std::string_view s);
// Rust's String::from_utf8_lossy: every maximal invalid subsequence becomes one U+FFFD. This is
// what Hugging Face does to bytes that are not UTF-8, so encode() applies it to its input.
std::string utf8_lossy(std::string_view bytes);
// True when `s` ends with U+FFFD (the mark of an incomplete or invalid trailing sequence).
bool ends_with_replacement_char(std::string_view s);

// GPT-2's reversible map between bytes and printable characters (ByteLevel pre-tokenizer and
// decoder): byte_to_char(b) is the UTF-8 string of the character; char_to_byte(cp) is the byte or
// -1 when cp is not one of the 256 characters.
const std::string& byte_to_char(uint8_t b);
int char_to_byte(uint32_t cp);

enum class NormalForm { kNFC, kNFD, kNFKC, kNFKD };
// Unicode normalization of valid UTF-8 (ASCII input is returned unchanged without a copy cost).
std::string normalize_unicode(std::string_view s, NormalForm form);
// Rust's char::to_lowercase applied to every character (full mappings, no context rules).
std::string lowercase(std::string_view s);

// Unicode classes used by added-token rules and pre-tokenizers.
bool is_whitespace(uint32_t cp);   // White_Space property (Rust char::is_whitespace)
bool is_word_char(uint32_t cp);    // regex \w: alphabetic, digit, mark, connector punctuation
bool is_numeric(uint32_t cp);      // general category N* (Rust char::is_numeric)
bool is_punctuation(uint32_t cp);  // general category P* or ASCII punctuation

}  // namespace mlxs::tok
