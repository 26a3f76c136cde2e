/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of passkeys.h: the ceremonies' state (challenges in the
 * ephemeral store), the options the browser gets, and the checks around
 * core/webauthn.c (which does the cryptography and the parsing).
 */
#include "core/passkeys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "base/log.h"
#include "core/accounts.h"
#include "core/audit.h"
#include "core/mail.h"
#include "core/mfa.h"
#include "core/ratelimit.h"
#include "core/sessions.h"
#include "core/webauthn.h"

#define CHALLENGE_TTL 300 /* seconds; also the browser's timeout */

static const struct svc_result STALE = {
    SVC_INVALID_INPUT, "The passkey challenge is unknown, used or expired; start again.", 0};
static const struct svc_result NOT_SET_UP = {
    SVC_NOT_CONFIGURED, "Passkeys need JWTD_PUBLIC_URL (the origin browsers see).", 0};
#define TOO_MANY "The account has as many passkeys as it may have (20); remove one first."
_Static_assert(PASSKEYS_PER_ACCOUNT == 20, "TOO_MANY names the limit");

struct rp_buf {
    char id[300];
    char origin[600];
    struct webauthn_rp rp;
};

bool passkeys_configured(const struct config *cfg)
{
    return cfg->public_url != NULL;
}

static bool rp_get(const struct config *cfg, struct rp_buf *b)
{
    char host[300];
    if (!config_public_host(cfg, host, sizeof host))
        return false;
    snprintf(b->id, sizeof b->id, "%s", cfg->webauthn_rp_id ? cfg->webauthn_rp_id : host);
    if (!config_public_origin(cfg, b->origin, sizeof b->origin))
        return false;
    b->rp.id = b->id;
    b->rp.origin = b->origin;
    return true;
}

/* The storage key of a challenge (as the browser echoes it, base64url). */
static bool challenge_key(const char *b64, size_t len, char out[96])
{
    char h[SHA256_HEX_LEN];
    if (len == 0 || len > 128 || !mail_token_hash(b64, len, h))
        return false;
    snprintf(out, 96, "wa:%s", h);
    return true;
}

/* A new challenge for kind and user_id ("" for none): its base64url text
 * into out. */
static struct svc_result challenge_new(struct app *app, const char *kind, const char *user_id,
                                       char out[64])
{
    uint8_t raw[WEBAUTHN_CHALLENGE_LEN];
    struct store_ephemeral e;
    memset(&e, 0, sizeof e);
    snprintf(e.kind, sizeof e.kind, "%s", kind);
    snprintf(e.user_id, sizeof e.user_id, "%s", user_id);
    e.value = (char *)"{}";
    e.expires_at = util_now() + CHALLENGE_TTL;
    bool ok = webauthn_challenge_new(raw) == WEBAUTHN_OK &&
              webauthn_b64url_encode(raw, sizeof raw, out, 64) == WEBAUTHN_OK &&
              challenge_key(out, strlen(out), e.key);
    OPENSSL_cleanse(raw, sizeof raw);
    if (!ok)
        return svc_fail(SVC_ERROR, NULL);
    enum store_rc rc = store_ephemeral_put(app->store, &e);
    return rc == STORE_OK ? svc_ok() : svc_store_failure(app, rc, "passkey_challenge");
}

/* A string member of obj, or NULL. */
static const char *str_member(json_t *obj, const char *name, size_t *ret_len)
{
    json_t *v = json_object_get(obj, name);
    if (!json_is_string(v))
        return NULL;
    if (ret_len)
        *ret_len = json_string_length(v);
    return json_string_value(v);
}

/* Decode the base64url member name of obj into a new buffer of at most cap
 * bytes. */
static bool b64_member(json_t *obj, const char *name, size_t cap, uint8_t **ret, size_t *ret_len)
{
    size_t len;
    const char *s = str_member(obj, name, &len);
    *ret = NULL;
    if (!s || !(*ret = malloc(cap ? cap : 1)))
        return false;
    if (webauthn_b64url_decode(s, len, *ret, cap, ret_len) != WEBAUTHN_OK) {
        free(*ret);
        *ret = NULL;
        return false;
    }
    return true;
}

/*
 * The challenge a credential answers: clientDataJSON's "challenge", looked
 * up and used up (single use whatever comes next). On success *cdj holds
 * the decoded clientDataJSON (caller frees), e the challenge's row and
 * raw/raw_len its bytes.
 */
static struct svc_result take_challenge(struct app *app, json_t *response, const char *kind,
                                        uint8_t **cdj, size_t *cdj_len, struct store_ephemeral *e,
                                        uint8_t raw[WEBAUTHN_CHALLENGE_MAX], size_t *raw_len)
{
    memset(e, 0, sizeof *e);
    if (!b64_member(response, "clientDataJSON", WEBAUTHN_CLIENT_DATA_MAX, cdj, cdj_len))
        return svc_fail(SVC_INVALID_INPUT,
                        "The credential's response.clientDataJSON is missing or not base64url.");
    json_t *cd = json_loadb((const char *)*cdj, *cdj_len, JSON_REJECT_DUPLICATES, NULL);
    size_t clen = 0;
    const char *ch = cd ? str_member(cd, "challenge", &clen) : NULL;
    char key[96];
    struct svc_result r = svc_ok();
    if (!ch || !challenge_key(ch, clen, key) ||
        webauthn_b64url_decode(ch, clen, raw, WEBAUTHN_CHALLENGE_MAX, raw_len) != WEBAUTHN_OK) {
        r = svc_fail(SVC_INVALID_INPUT, "The credential's client data has no usable challenge.");
    } else {
        enum store_rc rc = store_ephemeral_take(app->store, key, e);
        if (rc == STORE_NOT_FOUND)
            r = STALE;
        else if (rc != STORE_OK)
            r = svc_store_failure(app, rc, "passkey_challenge");
        else if (strcmp(e->kind, kind) != 0 || util_now() >= e->expires_at) {
            store_ephemeral_clear(e);
            r = STALE;
        }
    }
    json_decref(cd);
    if (r.status != SVC_OK) {
        free(*cdj);
        *cdj = NULL;
    }
    return r;
}

json_t *passkeys_describe(const struct store_passkey *p)
{
    char created[RFC3339_LEN], used[RFC3339_LEN];
    util_rfc3339(p->created_at, created);
    util_rfc3339(p->last_used_at, used);
    return json_pack("{s:s, s:s, s:s, s:s?, s:b}", "id", p->id, "name", p->name, "created_at",
                     created, "last_used_at", p->last_used_at ? used : NULL, "synced",
                     p->backup_eligible);
}

struct list_ctx {
    json_t *list;        /* descriptions, or NULL */
    json_t *descriptors; /* {"type","id"} for allow/exclude lists, or NULL */
    int n;
};

static void collect(void *vctx, const struct store_passkey *p)
{
    struct list_ctx *c = vctx;
    c->n++;
    if (c->list)
        json_array_append_new(c->list, passkeys_describe(p));
    if (c->descriptors)
        json_array_append_new(c->descriptors,
                              json_pack("{s:s, s:s}", "type", "public-key", "id", p->id));
}

static json_t *alg_params(void)
{
    return json_pack("[{s:s, s:i}, {s:s, s:i}, {s:s, s:i}]", "type", "public-key", "alg",
                     WEBAUTHN_ALG_ES256, "type", "public-key", "alg", WEBAUTHN_ALG_EDDSA, "type",
                     "public-key", "alg", WEBAUTHN_ALG_RS256);
}

/* ------------------------------------------------------ registration --- */

static void register_then(struct svc_op *op)
{
    struct app *app = op->app;
    struct rp_buf rp;
    if (!rp_get(app->cfg, &rp)) {
        op->res = NOT_SET_UP;
        return;
    }
    struct list_ctx c = {.descriptors = json_array()};
    enum store_rc rc = store_passkeys_list(app->store, op->user.id, collect, &c);
    if (rc != STORE_OK) {
        json_decref(c.descriptors);
        op->res = svc_store_failure(app, rc, "passkeys");
        return;
    }
    if (c.n >= PASSKEYS_PER_ACCOUNT) {
        json_decref(c.descriptors);
        op->res = svc_fail(SVC_INVALID_INPUT, TOO_MANY);
        return;
    }
    char challenge[64], site[300], uid[32];
    uint8_t ubytes[16];
    op->res = challenge_new(app, "pk_reg", op->user.id, challenge);
    if (op->res.status != SVC_OK) {
        json_decref(c.descriptors);
        return;
    }
    util_uuid_to_bytes(op->user.id, ubytes);
    webauthn_b64url_encode(ubytes, sizeof ubytes, uid, sizeof uid);
    const char *name = op->user.email[0] ? op->user.email : op->user.username;
    op->data = json_pack(
        "{s:{s:{s:s, s:s}, s:{s:s, s:s, s:s}, s:s, s:o, s:i, s:s, s:{s:s, s:b, s:s}, s:o}}",
        "publicKey", "rp", "id", rp.id, "name", mfa_site_name(app->cfg, site, sizeof site), "user",
        "id", uid, "name", name, "displayName", op->user.username, "challenge", challenge,
        "pubKeyCredParams", alg_params(), "timeout", CHALLENGE_TTL * 1000, "attestation", "none",
        "authenticatorSelection", "residentKey", "required", "requireResidentKey", 1,
        "userVerification", "required", "excludeCredentials", c.descriptors);
    if (!op->data)
        op->res = svc_fail(SVC_ERROR, NULL);
}

struct svc_op *passkeys_register_begin(struct app *app, const struct svc_ctx *ctx,
                                       const struct identity *who, const char *password,
                                       size_t plen)
{
    return accounts_reconfirm(app, ctx, who, password, plen, register_then, "passkey_registration");
}

/* Characters that show nothing or reorder what follows: Unicode's format
 * characters (soft hyphen, zero-width and bidirectional marks, embeddings,
 * overrides and isolates, word joiners, the byte order mark, interlinear
 * annotation) and the line and paragraph separators. In a name on the
 * account page they would let a passkey look blank or like another's. */
static bool invisible(uint32_t cp)
{
    return cp == 0xad || cp == 0x61c || cp == 0x180e || (cp >= 0x200b && cp <= 0x200f) ||
           (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x206f) ||
           cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb);
}

static bool blank(uint32_t cp)
{
    return cp == 0x20 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
           cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

/* 1 to 64 characters (as a browser's maxlength counts them, not bytes) of
 * UTF-8 (jansson has checked it), no control characters (C0, DEL, C1), no
 * invisible ones (above), and not only spaces. */
static bool name_ok(const char *s, size_t n)
{
    if (n == 0 || n > PASSKEY_NAME_MAX)
        return false;
    size_t chars = 0;
    bool visible = false;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = util_utf8_decode(s + i, n - i, &cp);
        if (len == 0 || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || invisible(cp))
            return false;
        visible = visible || !blank(cp);
        chars++;
        i += len;
    }
    return visible && chars <= 64;
}

struct svc_result passkeys_register_finish(struct app *app, const struct svc_ctx *ctx,
                                           const struct identity *who, json_t *credential,
                                           const char *name, size_t nlen, json_t **ret)
{
    struct rp_buf rp;
    if (!rp_get(app->cfg, &rp))
        return NOT_SET_UP;
    if (name && !name_ok(name, nlen))
        return svc_fail(SVC_INVALID_INPUT,
                        "The field 'name' must be 1 to 64 characters, not only spaces, without control or invisible characters.");
    json_t *response = json_object_get(credential, "response");
    if (!json_is_object(response))
        return svc_fail(SVC_INVALID_INPUT, "The field 'credential' needs a 'response' object.");
    uint8_t *cdj = NULL, *ao = NULL, challenge[WEBAUTHN_CHALLENGE_MAX];
    size_t cdj_len = 0, ao_len = 0, ch_len = 0;
    struct store_ephemeral e;
    struct svc_result r =
        take_challenge(app, response, "pk_reg", &cdj, &cdj_len, &e, challenge, &ch_len);
    if (r.status != SVC_OK)
        return r;
    bool mine = strcmp(e.user_id, who->sub) == 0;
    store_ephemeral_clear(&e);
    struct webauthn_credential cred;
    memset(&cred, 0, sizeof cred);
    enum webauthn_rc wrc = WEBAUTHN_ERR_MALFORMED_ATTESTATION;
    if (!mine) {
        r = STALE;
    } else if (!b64_member(response, "attestationObject", WEBAUTHN_ATTESTATION_MAX, &ao,
                           &ao_len)) {
        r = svc_fail(SVC_INVALID_INPUT,
                     "The credential's response.attestationObject is missing or not base64url.");
    } else if ((wrc = webauthn_register_verify(&rp.rp, cdj, cdj_len, ao, ao_len, challenge, ch_len,
                                               &cred)) != WEBAUTHN_OK) {
        r = svc_fail(wrc == WEBAUTHN_ERR_NO_MEMORY || wrc == WEBAUTHN_ERR_CRYPTO ? SVC_ERROR
                                                                                 : SVC_INVALID_INPUT,
                     webauthn_strerror(wrc));
        AUDIT(LOG_INFO, ctx, "passkey_registration_refused", "refused", who->sub,
              LF_S("reason", webauthn_strerror(wrc)));
    }
    free(cdj);
    free(ao);
    /* What the account had before: its first factor ends the sessions
     * opened with the password alone (mfa_factor_added). */
    struct svc_result mr = svc_ok();
    unsigned had = r.status == SVC_OK ? mfa_methods(app, who->sub, &mr) : 0;
    if (r.status == SVC_OK && mr.status != SVC_OK)
        r = mr;
    if (r.status != SVC_OK) {
        webauthn_credential_clear(&cred);
        return r;
    }
    struct store_passkey *p = calloc(1, sizeof *p);
    if (!p || cred.public_key_len * 2 > PASSKEY_KEY_MAX) {
        free(p);
        webauthn_credential_clear(&cred);
        return svc_fail(p ? SVC_INVALID_INPUT : SVC_ERROR, p ? "The public key is too large." : NULL);
    }
    webauthn_b64url_encode(cred.id, cred.id_len, p->id, sizeof p->id);
    snprintf(p->user_id, sizeof p->user_id, "%s", who->sub);
    util_hex(cred.public_key, cred.public_key_len, p->public_key_hex);
    p->alg = cred.alg;
    p->sign_count = cred.sign_count;
    snprintf(p->name, sizeof p->name, "%.*s", name ? (int)nlen : 7, name ? name : "Passkey");
    p->backup_eligible = cred.backup_eligible;
    p->created_at = util_now();
    webauthn_credential_clear(&cred);
    enum store_rc rc = store_passkey_insert(app->store, p, PASSKEYS_PER_ACCOUNT);
    if (rc == STORE_CONFLICT)
        r = svc_fail(SVC_ALREADY_ENABLED, "That passkey is registered already.");
    else if (rc == STORE_NOT_FOUND) /* registrations begun before the last ones finished */
        r = svc_fail(SVC_INVALID_INPUT, TOO_MANY);
    else if (rc != STORE_OK)
        r = svc_store_failure(app, rc, "passkeys");
    else {
        *ret = passkeys_describe(p);
        AUDIT(LOG_INFO, ctx, "passkey_added", "ok", who->sub, LF_B("synced", p->backup_eligible));
        mfa_factor_added(app, ctx, who, had);
        r = *ret ? svc_ok() : svc_fail(SVC_ERROR, NULL);
    }
    free(p);
    return r;
}

/* ----------------------------------------------------------- sign-in --- */

struct svc_result passkeys_login_begin(struct app *app, const struct svc_ctx *ctx,
                                       const char *ticket, size_t tlen, json_t **ret)
{
    struct rp_buf rp;
    if (!rp_get(app->cfg, &rp))
        return NOT_SET_UP;
    struct svc_result r = ratelimit_take(app, ctx, RATE_CHALLENGE);
    if (r.status != SVC_OK)
        return r;
    struct store_user u;
    memset(&u, 0, sizeof u);
    struct list_ctx c = {.descriptors = json_array()};
    if (ticket) {
        r = mfa_ticket_peek(app, ticket, tlen, &u, NULL);
        if (r.status != SVC_OK) {
            json_decref(c.descriptors);
            return r;
        }
        enum store_rc rc = store_passkeys_list(app->store, u.id, collect, &c);
        if (rc != STORE_OK || c.n == 0) {
            json_decref(c.descriptors);
            store_user_clear(&u);
            return rc != STORE_OK ? svc_store_failure(app, rc, "passkeys")
                                  : svc_fail(SVC_INVALID_INPUT, "The account has no passkey.");
        }
    }
    char challenge[64];
    r = challenge_new(app, "pk_login", u.id, challenge);
    store_user_clear(&u);
    if (r.status != SVC_OK) {
        json_decref(c.descriptors);
        return r;
    }
    *ret = json_pack("{s:{s:s, s:s, s:i, s:s, s:o}}", "publicKey", "challenge", challenge, "rpId",
                     rp.id, "timeout", CHALLENGE_TTL * 1000, "userVerification", "required",
                     "allowCredentials", c.descriptors);
    return *ret ? svc_ok() : svc_fail(SVC_ERROR, NULL);
}

/* A refused passkey sign-in (step: the second step it was, or NULL). */
static struct svc_result refused(struct app *app, const struct svc_ctx *ctx,
                                 struct mfa_step *step, const char *user_id, const char *why)
{
    if (step)
        return mfa_step_fail(app, ctx, step, why);
    metrics_inc(&app->metrics.logins[LOGIN_FAILED]);
    AUDIT(LOG_INFO, ctx, "login_failed", "refused", user_id, LF_S("method", "passkey"),
          LF_S("reason", why));
    return svc_fail(SVC_BAD_CREDENTIALS, "The passkey was refused.");
}

struct svc_result passkeys_login_finish(struct app *app, const struct svc_ctx *ctx,
                                        json_t *credential, const char *ticket, size_t tlen,
                                        struct store_user *ret_user,
                                        struct session_grant *ret_grant)
{
    struct rp_buf rp;
    if (!rp_get(app->cfg, &rp))
        return NOT_SET_UP;
    json_t *response = json_object_get(credential, "response");
    size_t idlen = 0;
    const char *id = str_member(credential, "rawId", &idlen);
    if (!id)
        id = str_member(credential, "id", &idlen);
    if (!json_is_object(response) || !id || idlen > PASSKEY_ID_MAX)
        return svc_fail(SVC_INVALID_INPUT,
                        "The field 'credential' needs 'id' (or 'rawId') and a 'response' object.");
    uint8_t *cdj = NULL, *ad = NULL, *sig = NULL, challenge[WEBAUTHN_CHALLENGE_MAX];
    size_t cdj_len = 0, ad_len = 0, sig_len = 0, ch_len = 0;
    struct store_ephemeral e;
    struct svc_result r =
        take_challenge(app, response, "pk_login", &cdj, &cdj_len, &e, challenge, &ch_len);
    if (r.status != SVC_OK)
        return r;
    char bound[UUID_STR_LEN];
    snprintf(bound, sizeof bound, "%s", e.user_id);
    store_ephemeral_clear(&e);

    struct store_passkey *p = calloc(1, sizeof *p);
    struct mfa_step step;
    memset(&step, 0, sizeof step);
    uint8_t *spki = malloc(WEBAUTHN_SPKI_MAX);
    size_t spki_len = 0;
    uint32_t new_count = 0;
    bool be_now = false; /* the assertion's backup-eligible flag */
    const char *why = NULL;
    if (!p || !spki) {
        r = svc_fail(SVC_ERROR, NULL);
        goto out;
    }
    char idz[PASSKEY_ID_MAX + 1];
    memcpy(idz, id, idlen);
    idz[idlen] = '\0';
    enum store_rc rc = store_passkey_get(app->store, idz, p);
    if (rc != STORE_OK && rc != STORE_NOT_FOUND) {
        r = svc_store_failure(app, rc, "passkeys");
        goto out;
    }
    if (ticket) {
        r = mfa_step_begin(app, ctx, ticket, tlen, &step);
        if (r.status != SVC_OK)
            goto out;
    }
    if (rc == STORE_NOT_FOUND) {
        why = "unknown_passkey";
    } else if ((bound[0] && strcmp(bound, p->user_id) != 0) ||
               (ticket && strcmp(step.user.id, p->user_id) != 0)) {
        why = "passkey_of_another_account";
    } else {
        /* The user handle must be the account's (a discoverable credential
         * names its user). A sign-in with no account named yet (no ticket)
         * needs it (WebAuthn 7.2 step 6); as a second step it may be left
         * out, as an authenticator may for a credential it was asked for. */
        uint8_t uh[64], want[16];
        size_t uh_len = 0, uhs_len = 0;
        const char *uhs = str_member(response, "userHandle", &uhs_len);
        if (uhs && uhs_len > 0 &&
            (webauthn_b64url_decode(uhs, uhs_len, uh, sizeof uh, &uh_len) != WEBAUTHN_OK ||
             !util_uuid_to_bytes(p->user_id, want) || uh_len != 16 || memcmp(uh, want, 16) != 0))
            why = "user_handle_mismatch";
        else if (!ticket && !(uhs && uhs_len > 0))
            why = "user_handle_missing";
    }
    if (!why) {
        if (!b64_member(response, "authenticatorData", WEBAUTHN_AUTH_DATA_MAX, &ad, &ad_len) ||
            !b64_member(response, "signature", WEBAUTHN_SIGNATURE_MAX, &sig, &sig_len) ||
            !util_unhex(p->public_key_hex, spki, WEBAUTHN_SPKI_MAX, &spki_len)) {
            why = "malformed_assertion";
        } else {
            enum webauthn_rc wrc = webauthn_assert_verify(&rp.rp, cdj, cdj_len, ad, ad_len, sig,
                                                          sig_len, challenge, ch_len, spki, spki_len,
                                                          p->alg, p->sign_count, &new_count);
            if (wrc == WEBAUTHN_ERR_COUNTER) {
                why = "counter_not_increased";
                AUDIT(LOG_WARN, ctx, "passkey_counter_regressed", "refused", p->user_id,
                      LF_I("stored", p->sign_count));
            } else if (wrc != WEBAUTHN_OK) {
                why = webauthn_strerror(wrc);
            } else {
                /* Backup eligibility should be fixed when the credential is
                 * made (WebAuthn Level 3, 6.1.3), but real authenticators
                 * change it (a password manager turning sync on for its
                 * passkeys, a platform keychain syncing after it
                 * registered), and it is the authenticator's word, proving
                 * nothing: refusing would lock people out for no safety.
                 * The sign-in says what the assertion says (a key that now
                 * may be synced is `swk`), and the change is logged. */
                struct webauthn_authdata pad;
                be_now = webauthn_authdata_parse(ad, ad_len, &pad) == WEBAUTHN_OK &&
                         (pad.flags & WEBAUTHN_FLAG_BE);
                if (be_now != (p->backup_eligible != 0))
                    AUDIT(LOG_WARN, ctx, "passkey_backup_eligibility_changed", "accepted",
                          p->user_id, LF_B("registered", p->backup_eligible != 0),
                          LF_B("now", be_now));
            }
        }
    }
    if (!why) {
        rc = store_passkey_use(app->store, p->id, new_count);
        if (rc == STORE_NOT_FOUND)
            why = "counter_not_increased"; /* another sign-in used that count first */
        else if (rc != STORE_OK) {
            r = svc_store_failure(app, rc, "passkeys");
            goto out;
        }
    }
    if (why) {
        r = refused(app, ctx, ticket ? &step : NULL, rc == STORE_OK ? p->user_id : NULL, why);
        goto out;
    }
    unsigned amr = be_now ? AMR_SWK : AMR_HWK;
    if (ticket) {
        r = mfa_step_finish(app, ctx, &step, amr, ret_user, ret_grant);
        goto out;
    }
    struct identity who;
    memset(&who, 0, sizeof who);
    snprintf(who.sub, sizeof who.sub, "%s", p->user_id);
    struct store_user u;
    r = accounts_get(app, &who, &u);
    if (r.status == SVC_GONE)
        r = refused(app, ctx, NULL, NULL, "account_deleted");
    if (r.status != SVC_OK)
        goto out;
    r = accounts_may_sign_in(app, ctx, &u);
    if (r.status == SVC_OK)
        r = sessions_open(app, ctx, &u, amr, ret_grant);
    if (r.status == SVC_OK) {
        /* The passkey may have been removed since it was checked (an
         * operator's `jwtd user mfa-reset`, the owner), and the removal's
         * "end every session" may have run before this session was
         * stored, missing it: whoever holds a stolen passkey and keeps
         * signing in would keep a session through the reset meant to shut
         * them out. So it is looked up again now that the session is
         * stored: a removal after this read is followed by the revocation,
         * which finds the session; one before it is seen here, and the
         * session is taken back before its tokens leave. */
        enum store_rc now = store_passkey_get(app->store, idz, p);
        if (now != STORE_OK || strcmp(p->user_id, u.id) != 0) {
            sessions_withdraw(app, u.id, "passkey_removed", ret_grant);
            r = now == STORE_OK || now == STORE_NOT_FOUND
                    ? refused(app, ctx, NULL, u.id, "passkey_removed")
                    : svc_store_failure(app, now, "passkeys");
        }
    }
    if (r.status == SVC_OK) {
        metrics_inc(&app->metrics.logins[LOGIN_OK]);
        AUDIT(LOG_INFO, ctx, "login", "ok", u.id, LF_S("sid", ret_grant->sid),
              LF_S("method", "passkey"));
        *ret_user = u;
    } else {
        store_user_clear(&u);
    }
out:
    mfa_step_end(app, &step);
    free(cdj);
    free(ad);
    free(sig);
    free(spki);
    free(p);
    return r;
}

/* ---------------------------------------------------- list and remove --- */

struct svc_result passkeys_list(struct app *app, const struct identity *who, json_t **ret)
{
    struct list_ctx c = {.list = json_array()};
    enum store_rc rc = store_passkeys_list(app->store, who->sub, collect, &c);
    if (rc != STORE_OK) {
        json_decref(c.list);
        return svc_store_failure(app, rc, "passkeys");
    }
    *ret = c.list;
    return svc_ok();
}

struct remove_priv {
    char id[PASSKEY_ID_MAX + 1];
};

static void remove_then(struct svc_op *op)
{
    struct remove_priv *rp = op->arg;
    enum store_rc rc = store_passkey_delete(op->app->store, op->user.id, rp->id);
    if (rc == STORE_NOT_FOUND)
        op->res = svc_fail(SVC_NOT_FOUND, "The account has no passkey with that id.");
    else if (rc != STORE_OK)
        op->res = svc_store_failure(op->app, rc, "passkeys");
    else
        AUDIT0(LOG_INFO, &op->ctx, "passkey_removed", "ok", op->user.id);
}

struct svc_op *passkeys_remove(struct app *app, const struct svc_ctx *ctx,
                               const struct identity *who, const char *id, size_t idlen,
                               const char *password, size_t plen)
{
    if (idlen == 0 || idlen > PASSKEY_ID_MAX) {
        struct svc_op *op = svc_op_new(app, ctx);
        if (op)
            op->res = svc_fail(SVC_NOT_FOUND, "The account has no passkey with that id.");
        return op;
    }
    struct svc_op *op = accounts_reconfirm(app, ctx, who, password, plen, remove_then,
                                           "passkey_removal");
    if (!op || op->res.status != SVC_OK || !op->slow)
        return op;
    struct remove_priv *rp = calloc(1, sizeof *rp);
    if (!rp) {
        op->res = svc_fail(SVC_ERROR, NULL);
        op->slow = NULL;
        return op;
    }
    memcpy(rp->id, id, idlen);
    rp->id[idlen] = '\0';
    op->arg = rp;
    op->arg_free = free;
    return op;
}
