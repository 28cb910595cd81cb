// Optional encryption of every workflow payload (arguments, results, memo, summaries) with
// AES-256-GCM, for people on a shared or hosted Temporal. The key (BATCHPILOT_CODEC_KEY, 64 hex
// characters) lives in the worker's and the client's environment and never reaches the server.
// Search attributes cannot be encrypted (the server indexes them): with a codec, batchpilot does not
// put the input path in one.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { METADATA_ENCODING_KEY, type Payload, type PayloadCodec } from '@temporalio/common';
// @temporalio/proto is CommonJS whose exports Node's ESM loader cannot see by name: take the default.
import proto from '@temporalio/proto';

const { temporal } = proto;

const ENCODING = 'binary/encrypted';
const KEY_ID = 'batchpilot-aes-256-gcm';

export class AesGcmCodec implements PayloadCodec {
  private readonly key: Buffer;

  constructor(hexKey: string) {
    this.key = Buffer.from(hexKey, 'hex');
    if (this.key.length !== 32)
      throw new Error('BATCHPILOT_CODEC_KEY must be 64 hex characters (a 256-bit key)');
  }

  encode(payloads: Payload[]): Promise<Payload[]> {
    return Promise.resolve(
      payloads.map((p) => {
        const iv = randomBytes(12);
        const cipher = createCipheriv('aes-256-gcm', this.key, iv);
        const plain = temporal.api.common.v1.Payload.encode(p).finish();
        const data = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
        return {
          metadata: {
            [METADATA_ENCODING_KEY]: Buffer.from(ENCODING),
            'encryption-key-id': Buffer.from(KEY_ID),
          },
          data,
        };
      }),
    );
  }

  decode(payloads: Payload[]): Promise<Payload[]> {
    // A wrong key or tampered bytes fail authentication: reject, as the SDK expects of a codec.
    return new Promise((resolve) =>
      resolve(
        payloads.map((p) => {
          if (Buffer.from(p.metadata?.[METADATA_ENCODING_KEY] ?? []).toString() !== ENCODING || !p.data)
            return p;
          const data = Buffer.from(p.data);
          const decipher = createDecipheriv('aes-256-gcm', this.key, data.subarray(0, 12));
          decipher.setAuthTag(data.subarray(data.length - 16));
          const plain = Buffer.concat([
            decipher.update(data.subarray(12, data.length - 16)),
            decipher.final(),
          ]);
          return temporal.api.common.v1.Payload.decode(plain);
        }),
      ),
    );
  }
}

/** The data converter option for Client and Worker: encryption when a key is configured. */
export function dataConverterFor(
  codecKey: string | undefined,
): { payloadCodecs: PayloadCodec[] } | undefined {
  return codecKey ? { payloadCodecs: [new AesGcmCodec(codecKey)] } : undefined;
}
