/* Prompts as the official HF path builds them (spec 5.1, 5.2): the task
 * prompt texts, and the id sequence BOS + per "<image>" split point the text
 * before it and a run of image placeholders, + the text after the last one.
 * No EOS. */
#ifndef DS_TEXT_PROMPT_H
#define DS_TEXT_PROMPT_H

#include <stdint.h>

#include "dsocr.h"
#include "text/tokenizer.h"

/* Prompt text of a task, e.g. "<image>\n<|grounding|>Convert the document to
 * markdown."; ref is the object for DSOCR_TASK_LOCATE (ignored otherwise).
 * *out is malloc'd. */
dsocr_status ds_task_prompt(dsocr_task task, const char *ref, char **out, dsocr_error *err);

typedef struct ds_prompt {
    ds_ids ids;             /* the full id sequence */
    uint8_t *image_mask;    /* [ids.n]: 1 at image placeholder positions (images_seq_mask) */
    size_t n_image_tokens;
} ds_prompt;

/* prompt: raw text with one "<image>" per image; it is strip()ped (Python
 * whitespace) first. image_tokens[i] is the placeholder count of image i (spec
 * 6.3). The number of "<image>" markers must equal n_images. */
dsocr_status ds_prompt_build(ds_tokenizer *tok, const char *prompt, const int *image_tokens, size_t n_images,
                             ds_prompt *out, dsocr_error *err);
void ds_prompt_free(ds_prompt *p);

#endif
