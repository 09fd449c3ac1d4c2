// Queue actions through @aws-sdk/client-sqs (JSON protocol): CreateQueue,
// DeleteQueue, GetQueueUrl, ListQueues, GetQueueAttributes,
// SetQueueAttributes, PurgeQueue.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateQueueCommand, DeleteQueueCommand, GetQueueAttributesCommand, GetQueueUrlCommand, ListQueuesCommand,
  PurgeQueueCommand, ReceiveMessageCommand, SendMessageCommand, SetQueueAttributesCommand, paginateListQueues,
} from '@aws-sdk/client-sqs';
import { ACCOUNT, daemonForSuite, REGION, unique } from './lib/daemon.mjs';
import { plainError, rejectsWith } from './lib/assertions.mjs';

describe('queue actions', () => {
  let daemon;
  let sqs;
  daemonForSuite((d, client) => {
    daemon = d;
    sqs = client;
  });
  const create = async (name, Attributes) => (await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes }))).QueueUrl;

  test('CreateQueue returns the URL and is idempotent', async () => {
    const name = unique('orders');
    const url = await create(name, { VisibilityTimeout: '40' });
    assert.equal(url, daemon.queueUrl(name));
    assert.equal(await create(name, { VisibilityTimeout: '40' }), url);
  });

  test('CreateQueue with other attributes: QueueNameExists', async () => {
    const name = unique('conflict');
    await create(name, { VisibilityTimeout: '40' });
    await rejectsWith(create(name, { VisibilityTimeout: '50' }),
      { name: 'QueueNameExists', code: 'QueueAlreadyExists', status: 400 });
  });

  test('CreateQueue with an unknown attribute: InvalidAttributeName', async () => {
    await rejectsWith(create(unique('bad'), { NoSuchAttribute: '1' }), { name: 'InvalidAttributeName' });
  });

  test('CreateQueue with a bad name: InvalidParameterValue, in AWS\'s words', async () => {
    await rejectsWith(create('no spaces'), plainError('InvalidParameterValue'));
    await assert.rejects(create('no spaces'), (e) => {
      assert.equal(e.message, 'Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length');
      return true;
    });
  });

  test('queue attributes as AWS answers: encryption, FifoQueue, booleans, unknown names', async () => {
    const attrs = async (url) =>
      (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }))).Attributes;
    const failsWith = (promise, name, message) => assert.rejects(promise, (e) => {
      assert.equal(e.name, name);
      assert.equal(e.message, message);
      return true;
    });
    const set = (QueueUrl, Attributes) => sqs.send(new SetQueueAttributesCommand({ QueueUrl, Attributes }));
    const url = await create(unique('attrs'));
    assert.equal((await attrs(url)).SqsManagedSseEnabled, 'true');
    await set(url, { KmsMasterKeyId: 'alias/aws/sqs' });
    assert.equal((await attrs(url)).KmsDataKeyReusePeriodSeconds, '300');
    await set(url, { KmsMasterKeyId: '' });
    assert.equal((await attrs(url)).KmsDataKeyReusePeriodSeconds, undefined);
    await failsWith(create(unique('plain'), { FifoQueue: 'false' }), 'InvalidAttributeName', 'Unknown Attribute FifoQueue.');
    await failsWith(set(url, { NoSuchThing: '1' }), 'InvalidAttributeName', 'Unknown Attribute NoSuchThing.');
    const fifo = await create(`${unique('attrs')}.fifo`, { FifoQueue: 'True', ContentBasedDeduplication: 'TRUE' });
    assert.equal((await attrs(fifo)).ContentBasedDeduplication, 'true');
    await failsWith(set(fifo, { FifoQueue: 'false' }), 'InvalidAttributeValue',
      'Value false for parameter FifoQueue is invalid. Reason: Modifying queue type is not supported.');
  });

  test('GetQueueUrl, and of a missing queue', async () => {
    const name = unique('lookup');
    const url = await create(name);
    assert.equal((await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl, url);
    await rejectsWith(sqs.send(new GetQueueUrlCommand({ QueueName: 'never-created' })),
      { name: 'QueueDoesNotExist', code: 'AWS.SimpleQueueService.NonExistentQueue', status: 400 });
  });

  test('ListQueues by prefix, and paginated with MaxResults and NextToken', async () => {
    const prefix = unique('listing');
    const urls = [];
    for (let i = 0; i < 5; i++) urls.push(await create(`${prefix}-${i}`));
    await create(unique('other'));
    const all = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: prefix }));
    assert.deepEqual([...all.QueueUrls].sort(), [...urls].sort());
    assert.equal(all.NextToken, undefined);

    const first = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: prefix, MaxResults: 2 }));
    assert.equal(first.QueueUrls.length, 2);
    assert.ok(first.NextToken);
    const seen = [];
    let pages = 0;
    for await (const page of paginateListQueues({ client: sqs, pageSize: 2 }, { QueueNamePrefix: prefix })) {
      pages++;
      seen.push(...(page.QueueUrls ?? []));
    }
    assert.equal(pages, 3);
    assert.deepEqual(seen.sort(), [...urls].sort());
    const none = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: 'nothing-like-this' }));
    assert.deepEqual(none.QueueUrls ?? [], []);
  });

  test('GetQueueAttributes: All, specific names, QueueArn; unknown name', async () => {
    const name = unique('attrs');
    const url = await create(name, { DelaySeconds: '2' });
    const all = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }))).Attributes;
    assert.equal(all.QueueArn, `arn:aws:sqs:${REGION}:${ACCOUNT}:${name}`);
    assert.equal(all.DelaySeconds, '2');
    assert.equal(all.VisibilityTimeout, '30');
    for (const key of ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible',
      'ApproximateNumberOfMessagesDelayed', 'CreatedTimestamp', 'LastModifiedTimestamp', 'MaximumMessageSize',
      'MessageRetentionPeriod', 'ReceiveMessageWaitTimeSeconds']) {
      assert.ok(key in all, key);
    }
    const some = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['DelaySeconds', 'QueueArn'] }));
    assert.deepEqual(some.Attributes, { DelaySeconds: '2', QueueArn: `arn:aws:sqs:${REGION}:${ACCOUNT}:${name}` });
    await rejectsWith(sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['NoSuchAttribute'] })),
      { name: 'InvalidAttributeName' });
  });

  test('SetQueueAttributes; unknown name; value out of range', async () => {
    const url = await create(unique('set'));
    await sqs.send(new SetQueueAttributesCommand({
      QueueUrl: url,
      Attributes: { VisibilityTimeout: '120', ReceiveMessageWaitTimeSeconds: '1', MaximumMessageSize: '2048' },
    }));
    const a = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }))).Attributes;
    assert.equal(a.VisibilityTimeout, '120');
    assert.equal(a.ReceiveMessageWaitTimeSeconds, '1');
    assert.equal(a.MaximumMessageSize, '2048');
    await rejectsWith(sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: { Bogus: '1' } })),
      { name: 'InvalidAttributeName' });
    await rejectsWith(sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: { VisibilityTimeout: '43201' } })),
      { name: 'InvalidAttributeValue', message: 'Invalid value for the parameter VisibilityTimeout.' });
  });

  test('PurgeQueue, and a second purge within 60 s', async () => {
    const url = await create(unique('purge'));
    for (let i = 0; i < 3; i++) await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: `m${i}` }));
    await sqs.send(new PurgeQueueCommand({ QueueUrl: url }));
    const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10 }));
    assert.equal(r.Messages, undefined);
    await rejectsWith(sqs.send(new PurgeQueueCommand({ QueueUrl: url })),
      { name: 'PurgeQueueInProgress', code: 'AWS.SimpleQueueService.PurgeQueueInProgress', status: 403 });
  });

  test('DeleteQueue, then the queue is gone', async () => {
    const name = unique('doomed');
    const url = await create(name);
    await sqs.send(new DeleteQueueCommand({ QueueUrl: url }));
    await rejectsWith(sqs.send(new GetQueueUrlCommand({ QueueName: name })), { name: 'QueueDoesNotExist' });
    await rejectsWith(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x' })),
      { name: 'QueueDoesNotExist', code: 'AWS.SimpleQueueService.NonExistentQueue' });
    await rejectsWith(sqs.send(new DeleteQueueCommand({ QueueUrl: url })), { name: 'QueueDoesNotExist' });
    // Without AttributeNames too: AWS answers NonExistentQueue, not an empty set.
    await rejectsWith(sqs.send(new GetQueueAttributesCommand({ QueueUrl: url })),
      { name: 'QueueDoesNotExist', code: 'AWS.SimpleQueueService.NonExistentQueue', status: 400 });
    await assert.rejects(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x' })), (e) => {
      assert.equal(e.message, 'The specified queue does not exist.');
      return true;
    });
  });
});
