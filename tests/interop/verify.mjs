// SPDX-License-Identifier: Apache-2.0
//
// Verify jwtd tokens with `jose` (an independent implementation) from a JWKS
// alone. Input on stdin: {"jwks": {...}, "issuer": "...", "audience": "...",
// "tokens": ["...", ...]}. Output on stdout: one result per token,
// [{"ok": true, "alg": "...", "kid": "...", "sub": "..."} | {"ok": false, "error": "..."}].
import { createLocalJWKSet, jwtVerify } from "jose";

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const keys = createLocalJWKSet(input.jwks);
const results = [];
for (const token of input.tokens) {
  try {
    const { payload, protectedHeader } = await jwtVerify(token, keys, {
      issuer: input.issuer,
      audience: input.audience,
      algorithms: ["ES256", "EdDSA", "RS256"],
    });
    results.push({ ok: true, alg: protectedHeader.alg, kid: protectedHeader.kid, sub: payload.sub });
  } catch (e) {
    results.push({ ok: false, error: String(e.code || e.message) });
  }
}
process.stdout.write(JSON.stringify(results));
