// MD5 digests as Amazon SQS computes them (SQS Developer Guide, "Calculating
// the MD5 message digest for message attributes"), written independently of
// the bridge to check its answers.
import { createHash } from 'node:crypto';

export const md5OfBody = (body) => createHash('md5').update(Buffer.from(body, 'utf8')).digest('hex');

function lengthPrefixed(bytes) {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

// attributes: { name: { DataType, StringValue | BinaryValue (Uint8Array) } }
export function md5OfAttributes(attributes) {
  const parts = [];
  for (const name of Object.keys(attributes).sort()) {
    const { DataType, StringValue, BinaryValue } = attributes[name];
    parts.push(lengthPrefixed(Buffer.from(name, 'utf8')), lengthPrefixed(Buffer.from(DataType, 'utf8')));
    if (DataType.startsWith('Binary')) {
      parts.push(Buffer.from([2]), lengthPrefixed(Buffer.from(BinaryValue)));
    } else {
      parts.push(Buffer.from([1]), lengthPrefixed(Buffer.from(StringValue, 'utf8')));
    }
  }
  return createHash('md5').update(Buffer.concat(parts)).digest('hex');
}

if (md5OfBody('This is a test message') !== 'fafb00f5732ab283681e124bf8747ed1') throw new Error('md5OfBody');
