#!/usr/bin/env node
// Cross-checks shared/crypto against the seed's Node.js implementation.
// Uses only Node's built-in crypto, exactly as the seed does:
//   stored = base64(iv(16) || authTag(16) || ciphertext), AAD = "<tenant_id>/<field>".
//
//   node vectors.js seal  < [{key_b64, aad, plaintext}]  -> [{..., stored}]
//   node vectors.js open  < [{key_b64, aad, stored}]     -> [{..., plaintext} | {..., error}]
'use strict';

const crypto = require('crypto');

const IV_LEN = 16;
const TAG_LEN = 16;

function seal(v) {
  const key = Buffer.from(v.key_b64, 'base64');
  const iv = crypto.randomBytes(IV_LEN);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(v.aad, 'utf8'));
  const encrypted = Buffer.concat([cipher.update(v.plaintext, 'utf8'), cipher.final()]);
  const authTag = cipher.getAuthTag();
  return { ...v, stored: Buffer.concat([iv, authTag, encrypted]).toString('base64') };
}

function open(v) {
  // Drop any plaintext passed in, so a failure never echoes one back.
  const { plaintext: _ignored, ...rest } = v;
  try {
    const key = Buffer.from(v.key_b64, 'base64');
    const raw = Buffer.from(v.stored, 'base64');
    if (raw.length < IV_LEN + TAG_LEN) throw new Error('too short');
    const iv = raw.subarray(0, IV_LEN);
    const authTag = raw.subarray(IV_LEN, IV_LEN + TAG_LEN);
    const encrypted = raw.subarray(IV_LEN + TAG_LEN);
    const decipher = crypto.createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_LEN });
    decipher.setAAD(Buffer.from(v.aad, 'utf8'));
    decipher.setAuthTag(authTag);
    const plaintext = Buffer.concat([decipher.update(encrypted), decipher.final()]).toString('utf8');
    return { ...rest, plaintext };
  } catch (e) {
    // Same policy as Go's ErrDecrypt: no detail beyond "did not open".
    return { ...rest, error: 'unable to authenticate data' };
  }
}

function main() {
  const mode = process.argv[2];
  const fn = { seal, open }[mode];
  if (!fn) {
    process.stderr.write('usage: node vectors.js seal|open < vectors.json\n');
    process.exit(2);
  }
  const chunks = [];
  process.stdin.on('data', (c) => chunks.push(c));
  process.stdin.on('end', () => {
    const vectors = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    process.stdout.write(JSON.stringify(vectors.map(fn)) + '\n');
  });
}

main();
