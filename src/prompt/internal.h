/* SPDX-License-Identifier: MIT */
/* internal.h -- what the prompt part's files share: the model families a
 * backend can belong to, the render context, and note helpers. */
#ifndef IG_PROMPT_INTERNAL_H
#define IG_PROMPT_INTERNAL_H

#include "prompt/prompt.h"
#include "core/buf.h"

enum prompt_family {
    FAM_SD15 = 0, FAM_SDXL, FAM_MIDJOURNEY, FAM_FLUX1, FAM_FLUX2, FAM_GPT_IMAGE, FAM_GEMINI,
    FAM_SD3, FAM_GENERIC
};

struct rctx {
    const struct prompt_spec *spec;
    const struct ig_backend_cfg *be;
    const struct prompt_options *opt;
    struct prompt_render *out;
    enum prompt_family fam;
    enum prompt_dialect dialect;
    int oom;
};

const char *prompt_family_name(enum prompt_family f);
enum prompt_family prompt_family_of(const struct ig_backend_cfg *be);
int  prompt_is_quality_tag(const char *s);

void prompt_note(struct rctx *c, enum prompt_note_kind k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
char *prompt_keep(struct rctx *c, struct ig_buf *b);   /* arena copy; resets b */

/* Writes src into b with weight syntax, flags and '::' removed (for
 * grammars that would read them literally); returns 1 if anything was. */
int prompt_put_plain(struct ig_buf *b, const char *src);

int prompt_render_weight(struct rctx *c);
int prompt_render_flag(struct rctx *c);
int prompt_render_natural(struct rctx *c);

#endif
