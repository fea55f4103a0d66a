/* UTF-8 helpers shared by the tokenizer: strict validation, and the lossy
 * conversion of Rust's String::from_utf8_lossy (each maximal invalid subpart
 * becomes one U+FFFD), in a form that also works on a stream of bytes. */
#ifndef DS_TEXT_UTF8_H
#define DS_TEXT_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when s starts with an
 * invalid one. *need is set to the length the sequence would need when s is a
 * proper prefix of a valid sequence cut by the end of the buffer (else 0). */
size_t ds_utf8_seq(const uint8_t *s, size_t n, size_t *need);

/* Offset of the first byte of the first invalid sequence, or n when valid. */
size_t ds_utf8_validate(const uint8_t *s, size_t n);

/* Decodes one valid sequence (as checked by ds_utf8_seq) to a code point. */
uint32_t ds_utf8_decode(const uint8_t *s, size_t len);

/* Writes the UTF-8 encoding of cp (<= 0x10FFFF) to out; returns its length. */
size_t ds_utf8_encode(uint32_t cp, uint8_t out[4]);

/* Lossy conversion of in[0..n) into out, which must hold 3*n bytes. When final
 * is 0, an unfinished sequence at the end is left unconsumed (it may still be
 * completed by more bytes). Returns the bytes written; *consumed gets the
 * input bytes used. */
size_t ds_utf8_lossy(const uint8_t *in, size_t n, int final, uint8_t *out, size_t *consumed);

#endif
