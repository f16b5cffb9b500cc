/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The "secret" object type: bytes given inline (data=) or read from a file
 * (file=), optionally base64-encoded.  The decoded bytes live in one
 * allocation that is wiped before it is freed; lookups hand out copies that
 * the caller releases with qcrypto_secret_free().
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <malloc.h>
#include <string.h>
#include <glib.h>
#include "crypto/cipher.h"
#include "crypto/secret.h"
#include "qom/object-internal.h"
#include "qemu/cutils.h"

typedef struct QCryptoSecret {
    uint8_t *data;
    size_t len;
} QCryptoSecret;

static const char *const secret_props[] = {
    "data", "file", "format", "keyid", "iv", NULL,
};

void qcrypto_secret_free(void *secret)
{
    if (!secret) {
        return;
    }
    /*
     * Callers get buffers from g_malloc (here and in the password prompt),
     * so the allocator knows the size even for bytes that contain NULs.
     */
    qemu_secure_zero(secret, malloc_usable_size(secret));
    g_free(secret);
}

static bool base64_char(char c)
{
    return g_ascii_isalnum(c) || c == '+' || c == '/';
}

/*
 * g_base64_decode() skips characters it does not know, which would turn a
 * typo into a different key; check the text strictly first.  Line breaks
 * are the one exception: the base64 tool ends its output with one (and
 * wraps long input), and QEMU accepts them too.
 */
static uint8_t *secret_decode_base64(const char *text, size_t text_len,
                                     size_t *out_len, Error **errp)
{
    size_t pad = 0, len = 0;
    char *copy = g_malloc(text_len + 1);
    uint8_t *decoded = NULL;
    gsize decoded_len;

    for (size_t i = 0; i < text_len; i++) {
        char c = text[i];
        if (c == '\n') {
            continue;
        }
        if (c == '=') {
            pad++;
        } else if (!base64_char(c) || pad) {
            error_setg(errp, "Base64 data contains invalid characters");
            goto out;
        }
        copy[len++] = c;
    }
    copy[len] = '\0';
    if (pad > 2 || len % 4 != 0) {
        error_setg(errp, "Base64 data length is invalid");
        goto out;
    }
    if (len == 0) {
        *out_len = 0;
        decoded = g_malloc0(1);
        goto out;
    }
    decoded = g_base64_decode(copy, &decoded_len);
    *out_len = decoded_len;
out:
    qemu_secure_zero(copy, text_len + 1);
    g_free(copy);
    return decoded;
}

/* Secrets are keys and passwords; anything bigger is a wrong file. */
#define SECRET_FILE_MAX (1 * MiB)

static uint8_t *secret_read_file(const char *path, size_t *len, Error **errp)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    uint8_t *buf;
    size_t used = 0;

    if (fd < 0) {
        error_setg_errno(errp, errno, "Unable to read secret file '%s'", path);
        return NULL;
    }
    buf = g_malloc(SECRET_FILE_MAX + 1);
    for (;;) {
        ssize_t n = read(fd, buf + used, SECRET_FILE_MAX + 1 - used);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            error_setg_errno(errp, errno, "Unable to read secret file '%s'",
                             path);
            goto fail;
        }
        if (n == 0) {
            break;
        }
        used += n;
        if (used > SECRET_FILE_MAX) {
            error_setg(errp, "Secret file '%s' is larger than %llu bytes",
                       path, (unsigned long long)SECRET_FILE_MAX);
            goto fail;
        }
    }
    close(fd);
    buf[used] = 0;
    *len = used;
    return buf;

fail:
    close(fd);
    qcrypto_secret_free(buf);
    return NULL;
}

/*
 * keyid=/iv=: the data is AES-256-CBC ciphertext under the secret @keyid
 * (libvirt's master key, 32 bytes), padded so that its last byte counts
 * the padding bytes.  Decrypts @raw in place and shortens *@raw_len.
 */
static bool secret_decrypt(uint8_t *raw, size_t *raw_len, const char *keyid,
                           const char *iv_b64, Error **errp)
{
    g_autofree uint8_t *iv = NULL;
    uint8_t *key;
    size_t key_len, iv_len = 0;
    QCryptoCipher *cipher;
    unsigned pad;
    bool ok;

    if (!iv_b64) {
        error_setg(errp, "IV is required to decrypt secret");
        return false;
    }
    key = qcrypto_secret_lookup(keyid, &key_len, errp);
    if (!key) {
        return false;
    }
    iv = secret_decode_base64(iv_b64, strlen(iv_b64), &iv_len, errp);
    if (!iv) {
        qcrypto_secret_free(key);
        return false;
    }
    if (iv_len != QCRYPTO_CIPHER_BLOCK_LEN) {
        error_setg(errp, "IV should be %d bytes in length not %zu",
                   QCRYPTO_CIPHER_BLOCK_LEN, iv_len);
        qcrypto_secret_free(key);
        return false;
    }
    if (key_len != 32) {
        error_setg(errp, "Key should be 32 bytes in length");
        qcrypto_secret_free(key);
        return false;
    }
    cipher = qcrypto_cipher_new(QCRYPTO_CIPHER_ALG_AES_256, QCRYPTO_CIPHER_MODE_CBC,
                                key, key_len, errp);
    qcrypto_secret_free(key);
    if (!cipher) {
        return false;
    }
    if (*raw_len % QCRYPTO_CIPHER_BLOCK_LEN) {
        error_setg(errp, "Length %zu must be a multiple of block size %d",
                   *raw_len, QCRYPTO_CIPHER_BLOCK_LEN);
        qcrypto_cipher_free(cipher);
        return false;
    }
    ok = qcrypto_cipher_decrypt(cipher, iv, raw, raw, *raw_len, errp);
    qcrypto_cipher_free(cipher);
    if (!ok) {
        return false;
    }
    pad = *raw_len ? raw[*raw_len - 1] : 0;
    if (pad > QCRYPTO_CIPHER_BLOCK_LEN || pad > *raw_len) {
        error_setg(errp, "Incorrect number of padding bytes (%u) found on decrypted data", pad);
        return false;
    }
    *raw_len -= pad;
    qemu_secure_zero(raw + *raw_len, pad);
    return true;
}

static void *secret_create(const char *id, const QDict *props, Error **errp)
{
    const char *key;
    json_t *value;
    const char *data, *file, *format, *keyid, *iv;
    bool base64 = false;
    uint8_t *raw;
    size_t raw_len;
    QCryptoSecret *s;

    json_object_foreach((json_t *)props, key, value) {
        bool known = false;
        for (size_t i = 0; secret_props[i]; i++) {
            if (strcmp(key, secret_props[i]) == 0) {
                known = true;
            }
        }
        if (!known) {
            error_setg(errp, "Parameter '%s' is unexpected", key);
            return NULL;
        }
        if (!json_is_string(value)) {
            error_setg(errp, "Parameter '%s' expects a string", key);
            return NULL;
        }
    }

    data = qdict_get_try_str(props, "data");
    file = qdict_get_try_str(props, "file");
    format = qdict_get_try_str(props, "format");
    keyid = qdict_get_try_str(props, "keyid");
    iv = qdict_get_try_str(props, "iv");
    if (iv && !keyid) {
        /* QEMU 7.2 takes it and does nothing with it; an IV alone decrypts nothing. */
        error_setg(errp, "'iv' is only used with 'keyid' (the key that encrypted the data)");
        return NULL;
    }
    if (format) {
        if (strcmp(format, "base64") == 0) {
            base64 = true;
        } else if (strcmp(format, "raw") != 0) {
            error_setg(errp, "Parameter 'format' does not accept value '%s'",
                       format);
            return NULL;
        }
    }
    if (data && file) {
        error_setg(errp, "'file' and 'data' are mutually exclusive");
        return NULL;
    }
    if (!data && !file) {
        error_setg(errp, "Either 'file' or 'data' must be provided");
        return NULL;
    }

    if (file) {
        size_t len = 0;
        uint8_t *contents = secret_read_file(file, &len, errp);

        if (!contents) {
            return NULL;
        }
        if (base64) {
            raw = secret_decode_base64((const char *)contents, len, &raw_len,
                                       errp);
        } else {
            raw = g_memdup2(contents, len + 1);
            raw_len = len;
        }
        qcrypto_secret_free(contents);
    } else if (base64) {
        raw = secret_decode_base64(data, strlen(data), &raw_len, errp);
    } else {
        raw_len = strlen(data);
        raw = g_memdup2(data, raw_len + 1);
    }
    if (!raw) {
        return NULL;
    }
    if (keyid && !secret_decrypt(raw, &raw_len, keyid, iv, errp)) {
        qcrypto_secret_free(raw);
        return NULL;
    }

    s = g_new0(QCryptoSecret, 1);
    s->data = raw;
    s->len = raw_len;
    return s;
}

static void secret_destroy(void *state)
{
    QCryptoSecret *s = state;

    qcrypto_secret_free(s->data);
    g_free(s);
}

const UserCreatableType qcrypto_secret_type = {
    .name = "secret",
    .create = secret_create,
    .destroy = secret_destroy,
};

static QCryptoSecret *secret_find(const char *id, Error **errp)
{
    QCryptoSecret *s;

    if (!id) {
        error_setg(errp, "No secret id given");
        return NULL;
    }
    s = user_creatable_find(id, "secret");
    if (!s) {
        if (user_creatable_exists(id)) {
            error_setg(errp, "Object '%s' is not a secret", id);
        } else {
            error_setg(errp, "No secret with id '%s'", id);
        }
    }
    return s;
}

uint8_t *qcrypto_secret_lookup(const char *id, size_t *len, Error **errp)
{
    QCryptoSecret *s = secret_find(id, errp);
    uint8_t *copy;

    if (!s) {
        return NULL;
    }
    /* One spare NUL so that text users can treat the copy as a string. */
    copy = g_malloc(s->len + 1);
    memcpy(copy, s->data, s->len);
    copy[s->len] = 0;
    *len = s->len;
    return copy;
}

char *qcrypto_secret_lookup_as_utf8(const char *id, Error **errp)
{
    size_t len;
    uint8_t *bytes = qcrypto_secret_lookup(id, &len, errp);

    if (!bytes) {
        return NULL;
    }
    if (memchr(bytes, 0, len)) {
        error_setg(errp, "Secret '%s' contains a NUL byte", id);
        qcrypto_secret_free(bytes);
        return NULL;
    }
    if (!g_utf8_validate((const char *)bytes, len, NULL)) {
        error_setg(errp, "Secret '%s' is not valid UTF-8", id);
        qcrypto_secret_free(bytes);
        return NULL;
    }
    return (char *)bytes;
}
