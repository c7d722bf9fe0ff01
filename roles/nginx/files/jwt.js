// selfhost.platform.nginx: RS256 JWT check for open-source nginx (njs >= 0.7, WebCrypto).
// Managed by Ansible; local edits are overwritten.
//
// Used through `auth_request` from a gated location: the internal location that runs
// `js_content jwt.verify` sets
//   $jwt_key_files  space-separated public key files (PEM, SubjectPublicKeyInfo); a token
//                   passes when any of them verifies it (key rotation overlap window)
//   $jwt_audience   expected `aud` (empty: not checked)
//   $jwt_leeway     clock skew allowed for exp/nbf, in seconds
// and answers 204 (token valid) or 401 (anything else). The reason of a refusal goes to
// the error log at `info` level, never to the client.
var fs = require('fs');

function b64urlDecode(s) {
    return Buffer.from(s, 'base64url');
}

function pemToDer(pem) {
    var body = pem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, '').replace(/\s+/g, '');
    return Buffer.from(body, 'base64');
}

function deny(r, reason) {
    r.log('jwt: refused: ' + reason);
    r.return(401);
}

function audienceOk(claims, wanted) {
    if (!wanted) {
        return true;
    }
    var aud = claims.aud;
    if (typeof aud === 'string') {
        return aud === wanted;
    }
    if (Array.isArray(aud)) {
        return aud.indexOf(wanted) !== -1;
    }
    return false;
}

async function verifyWithAny(files, signature, data) {
    for (var i = 0; i < files.length; i++) {
        var pem;
        try {
            pem = fs.readFileSync(files[i], 'utf8');
        } catch (e) {
            continue;
        }
        var key = await crypto.subtle.importKey('spki', pemToDer(pem),
            {name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256'}, false, ['verify']);
        if (await crypto.subtle.verify({name: 'RSASSA-PKCS1-v1_5'}, key, signature, data)) {
            return true;
        }
    }
    return false;
}

async function verify(r) {
    var header = r.headersIn.Authorization || '';
    var m = header.match(/^Bearer\s+([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/);
    if (!m) {
        return deny(r, 'no bearer token');
    }
    var head, claims;
    try {
        head = JSON.parse(b64urlDecode(m[1]).toString());
        claims = JSON.parse(b64urlDecode(m[2]).toString());
    } catch (e) {
        return deny(r, 'malformed token');
    }
    if (head.alg !== 'RS256') {
        return deny(r, 'alg ' + head.alg + ' is not RS256');
    }
    var files = (r.variables.jwt_key_files || '').split(' ').filter(function (f) { return f; });
    var ok = false;
    try {
        ok = await verifyWithAny(files, b64urlDecode(m[3]), Buffer.from(m[1] + '.' + m[2]));
    } catch (e) {
        return deny(r, 'verification error: ' + e.message);
    }
    if (!ok) {
        return deny(r, 'bad signature');
    }
    var now = Math.floor(Date.now() / 1000);
    var leeway = parseInt(r.variables.jwt_leeway || '0', 10);
    if (typeof claims.exp !== 'number' || now > claims.exp + leeway) {
        return deny(r, 'expired or no exp');
    }
    if (claims.nbf !== undefined && (typeof claims.nbf !== 'number' || now + leeway < claims.nbf)) {
        return deny(r, 'not yet valid');
    }
    if (!audienceOk(claims, r.variables.jwt_audience)) {
        return deny(r, 'audience mismatch');
    }
    r.return(204);
}

export default {verify};
