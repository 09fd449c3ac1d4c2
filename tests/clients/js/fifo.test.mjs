// FIFO queues through @aws-sdk/client-sqs (JSON protocol).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ChangeMessageVisibilityCommand, CreateQueueCommand, DeleteMessageCommand, GetQueueAttributesCommand, PurgeQueueCommand,
  ReceiveMessageCommand, SendMessageBatchCommand, SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { daemonForSuite, unique } from './lib/daemon.mjs';
import { plainError, rejectsWith } from './lib/assertions.mjs';

describe('FIFO queues', () => {
  let daemon;
  let sqs;
  daemonForSuite((d, client) => {
    daemon = d;
    sqs = client;
  });
  const newFifo = async (extra = {}) => (await sqs.send(new CreateQueueCommand({
    QueueName: `${unique('f')}.fifo`, Attributes: { FifoQueue: 'true', ...extra },
  }))).QueueUrl;
  const send = (QueueUrl, MessageBody, MessageGroupId, MessageDeduplicationId) =>
    sqs.send(new SendMessageCommand({ QueueUrl, MessageBody, MessageGroupId, MessageDeduplicationId }));
  const receive = async (QueueUrl, options = {}) =>
    (await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, ...options }))).Messages ?? [];
  // Long polls of a second until a receive returns messages or `timeoutMs` has passed.
  const receiveWhenAny = async (QueueUrl, options = {}, timeoutMs = 20000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = await receive(QueueUrl, { WaitTimeSeconds: 1, ...options });
      if (got.length > 0 || Date.now() > deadline) return got;
    }
  };
  const changeVisibility = (QueueUrl, message, VisibilityTimeout) =>
    sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl, ReceiptHandle: message.ReceiptHandle, VisibilityTimeout }));
  const bodiesAndCounts = (messages) => messages.map((m) => [m.Body, m.Attributes?.ApproximateReceiveCount]);

  test('CreateQueue with FifoQueue; the name must end with .fifo', async () => {
    const url = await newFifo();
    const a = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }))).Attributes;
    assert.equal(a.FifoQueue, 'true');
    assert.equal(a.ContentBasedDeduplication, 'false');
    await rejectsWith(sqs.send(new CreateQueueCommand({ QueueName: unique('nosuffix'), Attributes: { FifoQueue: 'true' } })),
      plainError('InvalidParameterValue'));
  });

  test('MessageGroupId is required: MissingParameter', async () => {
    const url = await newFifo();
    await rejectsWith(send(url, 'x', undefined, 'd'), plainError('MissingParameter'));
  });

  test('without content-based deduplication a MessageDeduplicationId is required: InvalidParameterValue', async () => {
    const url = await newFifo();
    await rejectsWith(send(url, 'x', 'g', undefined), plainError('InvalidParameterValue'));
  });

  test('deduplication by MessageDeduplicationId', async () => {
    const url = await newFifo();
    const first = await send(url, 'a', 'g', 'd1');
    const again = await send(url, 'b', 'g', 'd1');
    assert.equal(again.MessageId, first.MessageId);
    await send(url, 'a', 'g', 'd2');
    const got = await receive(url, { MessageSystemAttributeNames: ['MessageDeduplicationId'] });
    assert.deepEqual(got.map((m) => [m.Body, m.Attributes.MessageDeduplicationId]), [['a', 'd1'], ['a', 'd2']]);
  });

  test('ContentBasedDeduplication', async () => {
    const url = await newFifo({ ContentBasedDeduplication: 'true' });
    const first = await send(url, 'same', 'g');
    const again = await send(url, 'same', 'g');
    assert.equal(again.MessageId, first.MessageId);
    await send(url, 'different', 'g');
    assert.deepEqual((await receive(url)).map((m) => m.Body), ['same', 'different']);
  });

  test('SequenceNumber on send and receive; order within a group; a group waits while in flight', async () => {
    const url = await newFifo();
    const sent = [];
    for (let i = 0; i < 3; i++) sent.push(await send(url, `a${i}`, 'A', `a${i}`));
    await send(url, 'b0', 'B', 'b0');
    const numbers = sent.map((s) => s.SequenceNumber);
    assert.ok(numbers.every((n) => /^\d+$/.test(n)));
    assert.deepEqual(numbers.map(BigInt), [...numbers.map(BigInt)].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)));
    const [a0] = await receive(url, { MaxNumberOfMessages: 1, AttributeNames: ['All'] });
    assert.equal(a0.Body, 'a0');
    assert.equal(a0.Attributes.SequenceNumber, numbers[0]);
    assert.equal(a0.Attributes.MessageGroupId, 'A');
    assert.deepEqual((await receive(url)).map((m) => m.Body), ['b0']);
    await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: a0.ReceiptHandle }));
    const rest = await receive(url, { AttributeNames: ['SequenceNumber'] });
    assert.deepEqual(rest.map((m) => m.Body), ['a1', 'a2']);
    assert.deepEqual(rest.map((m) => m.Attributes.SequenceNumber), numbers.slice(1));
  });

  test('a message made visible again is received again; the next, still in flight, is not, as on AWS', async () => {
    const url = await newFifo();
    await send(url, 'g1-m1', 'g1', 'd1');
    await send(url, 'g1-m2', 'g1', 'd2');
    const [m1, m2, ...more] = await receive(url, { VisibilityTimeout: 30 });
    assert.deepEqual([m1?.Body, m2?.Body, more.length], ['g1-m1', 'g1-m2', 0]);
    await changeVisibility(url, m1, 0);
    const again = await receive(url, { VisibilityTimeout: 30, MessageSystemAttributeNames: ['ApproximateReceiveCount'] });
    assert.deepEqual(bodiesAndCounts(again), [['g1-m1', '2']]);
    assert.deepEqual(await receive(url), [], 'g1-m2 was delivered while in flight');
    await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: again[0].ReceiptHandle }));
    assert.deepEqual(await receive(url), [], 'g1-m2 was delivered while in flight');
    await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m2.ReceiptHandle }));
    assert.deepEqual(await receive(url, { VisibilityTimeout: 0 }), []);
  });

  test('a message kept in flight holds back the rest of its group when the others come back, as on AWS', async () => {
    // m1, m2, m3 received together; m2's visibility is extended. When m1 and
    // m3 are visible again a receive returns m1 only: m3 comes after m2, still
    // in flight, and waits until m2 is released.
    const url = await newFifo();
    for (const i of [1, 2, 3]) await send(url, `m${i}`, 'g', `d${i}`);
    const first = await receive(url, { VisibilityTimeout: 3 });
    assert.deepEqual(first.map((m) => m.Body), ['m1', 'm2', 'm3']);
    const m2 = first[1];
    await changeVisibility(url, m2, 60);
    const counted = { VisibilityTimeout: 60, MessageSystemAttributeNames: ['ApproximateReceiveCount'] };
    const again = await receiveWhenAny(url, counted);
    assert.deepEqual(bodiesAndCounts(again), [['m1', '2']]);
    assert.deepEqual(await receive(url), [], 'm3 was delivered while m2, before it, is in flight');
    await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: again[0].ReceiptHandle }));
    assert.deepEqual(await receive(url), [], 'm3 was delivered while m2, before it, is in flight');
    await changeVisibility(url, m2, 0);
    assert.deepEqual(bodiesAndCounts(await receive(url, counted)), [['m2', '2'], ['m3', '2']]);
  });

  test('SendMessageBatch to a FIFO queue', async () => {
    const url = await newFifo();
    const r = await sqs.send(new SendMessageBatchCommand({
      QueueUrl: url,
      Entries: [
        ...[0, 1, 2].map((i) => ({ Id: `e${i}`, MessageBody: `m${i}`, MessageGroupId: 'g', MessageDeduplicationId: `d${i}` })),
      ],
    }));
    assert.deepEqual(r.Successful.map((s) => s.Id), ['e0', 'e1', 'e2']);
    assert.ok(r.Successful.every((s) => /^\d+$/.test(s.SequenceNumber)));
    assert.deepEqual(r.Failed ?? [], []);
    assert.deepEqual((await receive(url)).map((m) => m.Body), ['m0', 'm1', 'm2']);
  });

  test('a handle whose visibility timeout ran out deletes nothing, as on AWS', async () => {
    const url = await newFifo();
    await send(url, 'm', 'g', 'd');
    const [first] = await receive(url, { VisibilityTimeout: 1 });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await assert.rejects(sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: first.ReceiptHandle })), (e) => {
      assert.equal(e.Code, 'InvalidParameterValue');
      assert.equal(e.$metadata?.httpStatusCode, 400);
      assert.equal(e.message, `Value ${first.ReceiptHandle} for parameter ReceiptHandle is invalid. `
        + 'Reason: The receipt handle has expired.');
      return true;
    });
    const again = await receive(url, { VisibilityTimeout: 30 });
    assert.deepEqual(again.map((m) => m.Body), ['m'], 'the refused delete deleted the message');
    await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: again[0].ReceiptHandle }));
  });

  test('PurgeQueue ends the deduplication window, as on AWS', async () => {
    const url = await newFifo();
    const first = await send(url, 'before', 'g', 'same');
    await sqs.send(new PurgeQueueCommand({ QueueUrl: url }));
    const again = await send(url, 'after', 'g', 'same');
    assert.notEqual(again.MessageId, first.MessageId, 'deduplicated against a message sent before the purge');
    assert.deepEqual((await receive(url)).map((m) => m.Body), ['after']);
  });

  test('a FIFO batch with an entry missing its group or deduplication id fails whole, as on AWS', async () => {
    const url = await newFifo();
    const ok = { Id: 'ok', MessageBody: 'ok', MessageGroupId: 'g', MessageDeduplicationId: 'd-ok' };
    const batch = (entry) => sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: [ok, entry] }));
    await assert.rejects(batch({ Id: 'nogroup', MessageBody: 'x', MessageDeduplicationId: 'dx' }), (e) => {
      assert.equal(e.Code, 'MissingParameter');
      assert.equal(e.$metadata?.httpStatusCode, 400);
      assert.equal(e.message, 'The request must contain the parameter MessageGroupId.');
      return true;
    });
    await assert.rejects(batch({ Id: 'nodedup', MessageBody: 'x', MessageGroupId: 'g' }), (e) => {
      assert.equal(e.Code, 'InvalidParameterValue');
      assert.equal(e.message, 'The queue should either have ContentBasedDeduplication enabled or '
        + 'MessageDeduplicationId provided explicitly');
      return true;
    });
    assert.deepEqual(await receive(url), [], 'an entry of a refused batch was sent');
  });

  test('DelaySeconds per message is refused, but 0 (the queue\'s own delay still applies)', async () => {
    const url = await newFifo({ DelaySeconds: '1' });
    await rejectsWith(sqs.send(new SendMessageCommand({
      QueueUrl: url, MessageBody: 'x', MessageGroupId: 'g', MessageDeduplicationId: 'd', DelaySeconds: 1,
    })), plainError('InvalidParameterValue'));
    await sqs.send(new SendMessageCommand({
      QueueUrl: url, MessageBody: 'one', MessageGroupId: 'g', MessageDeduplicationId: 'd1', DelaySeconds: 0,
    }));
    const r = await sqs.send(new SendMessageBatchCommand({
      QueueUrl: url,
      Entries: [{ Id: 'two', MessageBody: 'two', MessageGroupId: 'g2', MessageDeduplicationId: 'd2', DelaySeconds: 0 }],
    }));
    assert.deepEqual(r.Successful.map((s) => s.Id), ['two']);
    assert.deepEqual(await receive(url), [], "the queue's delay");
    const got = [];
    const deadline = Date.now() + 5000;
    while (got.length < 2 && Date.now() < deadline) got.push(...await receive(url, { WaitTimeSeconds: 1 }));
    assert.deepEqual(got.map((m) => m.Body).sort(), ['one', 'two']);
  });
});
