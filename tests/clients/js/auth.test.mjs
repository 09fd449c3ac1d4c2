// SigV4 verification over the JSON protocol: shmqd --auth KEY:SECRET.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CreateQueueCommand, ListQueuesCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { Daemon } from './lib/daemon.mjs';
import { rejectsWith } from './lib/assertions.mjs';

const KEY = 'AKIASHMQJSTESTKEY001';
const SECRET = 'js/s3cr3t+with=special';

describe('--auth', () => {
  let daemon;
  before(async () => {
    daemon = await Daemon.start(['--auth', `${KEY}:${SECRET}`]);
  });
  after(async () => {
    await daemon?.stop();
  });

  test('the right credentials are accepted', async () => {
    const sqs = daemon.client({ accessKeyId: KEY, secretAccessKey: SECRET });
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'signed' }));
    await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'signed ✓ & +=/' }));
    const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MessageSystemAttributeNames: ['SenderId'] }));
    assert.equal(r.Messages[0].Body, 'signed ✓ & +=/');
    assert.equal(r.Messages[0].Attributes.SenderId, KEY);
    sqs.destroy();
  });

  test('a wrong secret: SignatureDoesNotMatch', async () => {
    const sqs = daemon.client({ accessKeyId: KEY, secretAccessKey: 'wrong' });
    await rejectsWith(sqs.send(new ListQueuesCommand({})),
      { name: 'SignatureDoesNotMatch', code: 'SignatureDoesNotMatch', status: 403 });
    sqs.destroy();
  });

  test('an unknown access key: InvalidClientTokenId', async () => {
    const sqs = daemon.client({ accessKeyId: 'AKIAUNKNOWN000000000', secretAccessKey: SECRET });
    await rejectsWith(sqs.send(new ListQueuesCommand({})),
      { name: 'InvalidClientTokenId', code: 'InvalidClientTokenId', status: 403 });
    sqs.destroy();
  });
});
