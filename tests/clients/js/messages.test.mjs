// Message actions through @aws-sdk/client-sqs (JSON protocol): SendMessage,
// SendMessageBatch, ReceiveMessage (long polls too), DeleteMessage,
// DeleteMessageBatch, ChangeMessageVisibility, ChangeMessageVisibilityBatch.
// The SDK checks MD5OfMessageBody itself; attribute digests are checked here.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ChangeMessageVisibilityBatchCommand, ChangeMessageVisibilityCommand, CreateQueueCommand, DeleteMessageBatchCommand,
  DeleteMessageCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageBatchCommand, SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { daemonForSuite, unique } from './lib/daemon.mjs';
import { md5OfAttributes, md5OfBody } from './lib/sqs_md5.mjs';
import { plainError, rejectsWith } from './lib/assertions.mjs';

const ATTRIBUTES = {
  name: { DataType: 'String', StringValue: 'Zoë ✓' },
  count: { DataType: 'Number', StringValue: '42' },
  ratio: { DataType: 'Number.float', StringValue: '3.25' },
  blob: { DataType: 'Binary', BinaryValue: Uint8Array.from({ length: 256 }, (_, i) => i) },
  thumbnail: { DataType: 'Binary.png', BinaryValue: Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]) },
  'color.primary': { DataType: 'String.colour', StringValue: 'red' },
  'color.secondary': { DataType: 'String', StringValue: 'blue' },
};
const TRACE = 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1';
const pick = (obj, keys) => Object.fromEntries(keys.map((k) => [k, obj[k]]));
// Received attributes in the shape they were sent (BinaryValue as bytes).
const normalize = (attrs) => Object.fromEntries(Object.entries(attrs ?? {}).map(([k, v]) => [k,
  v.BinaryValue !== undefined ? { DataType: v.DataType, BinaryValue: Uint8Array.from(v.BinaryValue) }
    : { DataType: v.DataType, StringValue: v.StringValue }]));

describe('message actions', () => {
  let daemon;
  let sqs;
  daemonForSuite((d, client) => {
    daemon = d;
    sqs = client;
  });
  const newQueue = async (Attributes) =>
    (await sqs.send(new CreateQueueCommand({ QueueName: unique('q'), Attributes }))).QueueUrl;
  const receive = async (QueueUrl, options = {}) =>
    (await sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 5, ...options }))).Messages ?? [];
  const receiveOne = async (QueueUrl, options) => {
    const messages = await receive(QueueUrl, options);
    assert.equal(messages.length, 1);
    return messages[0];
  };
  const drain = async (QueueUrl, expect, options = {}) => {
    const got = [];
    while (got.length < expect) {
      const batch = await receive(QueueUrl, { MaxNumberOfMessages: 10, ...options });
      if (batch.length === 0) break;
      got.push(...batch);
    }
    return got;
  };

  test('SendMessage digests; ReceiveMessage returns body, attributes and their digests', async () => {
    const url = await newQueue();
    const body = 'héllo ✓ 𝄞 {"json": true} <xml/>';
    const sent = await sqs.send(new SendMessageCommand({
      QueueUrl: url,
      MessageBody: body,
      MessageAttributes: ATTRIBUTES,
      MessageSystemAttributes: { AWSTraceHeader: { DataType: 'String', StringValue: TRACE } },
    }));
    assert.equal(sent.MD5OfMessageBody, md5OfBody(body));
    assert.equal(sent.MD5OfMessageAttributes, md5OfAttributes(ATTRIBUTES));
    assert.equal(sent.MD5OfMessageSystemAttributes,
      md5OfAttributes({ AWSTraceHeader: { DataType: 'String', StringValue: TRACE } }));
    const m = await receiveOne(url, { MessageAttributeNames: ['All'], MessageSystemAttributeNames: ['AWSTraceHeader'] });
    assert.equal(m.MessageId, sent.MessageId);
    assert.equal(m.Body, body);
    assert.equal(m.MD5OfBody, md5OfBody(body));
    assert.deepEqual(normalize(m.MessageAttributes), ATTRIBUTES);
    assert.equal(m.MD5OfMessageAttributes, md5OfAttributes(ATTRIBUTES));
    assert.deepEqual(m.Attributes, { AWSTraceHeader: TRACE });
  });

  test('the X-Amzn-Trace-Id header becomes the message\'s AWSTraceHeader, as on AWS', async () => {
    const url = await newQueue();
    const command = new SendMessageCommand({ QueueUrl: url, MessageBody: 'traced' });
    command.middlewareStack.add((next) => (args) => {
      args.request.headers['x-amzn-trace-id'] = TRACE;
      return next(args);
    }, { step: 'build', name: 'traceHeader' });
    await sqs.send(command);
    const m = await receiveOne(url, { MessageSystemAttributeNames: ['AWSTraceHeader'] });
    assert.deepEqual(m.Attributes, { AWSTraceHeader: TRACE });
  });

  test('message validation as AWS answers it', async () => {
    const url = await newQueue();
    await assert.rejects(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: '' })), (e) => {
      assert.equal(e.Code, 'MissingParameter');
      assert.equal(e.message, 'The request must contain the parameter MessageBody.');
      return true;
    });
    await rejectsWith(sqs.send(new SendMessageCommand({
      QueueUrl: url, MessageBody: 'x', MessageAttributes: { a: { DataType: 'String', StringValue: 'bell \u0007' } },
    })), plainError('InvalidParameterValue'));
    await assert.rejects(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x', MessageDeduplicationId: 'd1' })),
      (e) => {
        assert.equal(e.Code, 'InvalidParameterValue');
        assert.equal(e.message, 'Value d1 for parameter MessageDeduplicationId is invalid. Reason: The request include '
          + 'parameter that is not valid for this queue type.');
        return true;
      });
    const name = 'attr.1øßä';
    await sqs.send(new SendMessageCommand({
      QueueUrl: url, MessageBody: 'x', MessageAttributes: { [name]: { DataType: 'String', StringValue: 'v' } },
    }));
    assert.deepEqual(Object.keys((await receiveOne(url, { MessageAttributeNames: ['All'] })).MessageAttributes), [name]);
    await assert.rejects(sqs.send(new SendMessageBatchCommand({
      QueueUrl: url,
      Entries: [{ Id: 'one', MessageBody: 'x'.repeat(600000) }, { Id: 'two', MessageBody: 'y'.repeat(448577) }],
    })), (e) => {
      assert.equal(e.name, 'BatchRequestTooLong');
      assert.equal(e.message, 'Batch requests cannot be longer than 1048576 bytes. You have sent 1048577 bytes.');
      return true;
    });
  });

  test('batch and receive errors in AWS\'s words', async () => {
    const url = await newQueue();
    const says = (promise, message) => assert.rejects(promise, (e) => {
      assert.equal(e.message, message);
      return true;
    });
    const batch = (Entries) => sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries }));
    await says(batch(Array.from({ length: 11 }, (_, i) => ({ Id: `e${i}`, MessageBody: 'x' }))),
      'Maximum number of entries per request are 10. You have sent 11.');
    await says(batch([]), 'There should be at least one SendMessageBatchRequestEntry in the request.');
    await says(batch([{ Id: 'same', MessageBody: 'a' }, { Id: 'same', MessageBody: 'b' }]), 'Id same repeated.');
    await says(sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 11 })),
      'Value 11 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.');
    await says(sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 21 })),
      'Value 21 for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.');
  });

  test('no attributes: no attribute digest', async () => {
    const url = await newQueue();
    const sent = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'plain' }));
    assert.equal(sent.MD5OfMessageAttributes, undefined);
    const m = await receiveOne(url, { MessageAttributeNames: ['All'] });
    assert.equal(m.MessageAttributes, undefined);
    assert.equal(m.MD5OfMessageAttributes, undefined);
  });

  test('MessageAttributeNames: All, prefix.*, exact', async () => {
    const url = await newQueue();
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x', MessageAttributes: ATTRIBUTES }));
    const check = async (names, keys) => {
      const m = await receiveOne(url, { MessageAttributeNames: names, VisibilityTimeout: 0 });
      const expected = pick(ATTRIBUTES, keys);
      assert.deepEqual(normalize(m.MessageAttributes), expected, names.join());
      assert.equal(m.MD5OfMessageAttributes, keys.length ? md5OfAttributes(expected) : undefined);
    };
    await check(['All'], Object.keys(ATTRIBUTES));
    await check(['color.*'], ['color.primary', 'color.secondary']);
    await check(['count', 'blob'], ['count', 'blob']);
    await check(['absent'], []);
  });

  test('MessageAttributeNames: X.* is the names that start with X, as on AWS', async () => {
    const url = await newQueue();
    const attrs = Object.fromEntries(['Hello', 'Help.Me', 'Other', 'Custom1']
      .map((n) => [n, { DataType: 'String', StringValue: n.toLowerCase() }]));
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x', MessageAttributes: attrs }));
    const names = async (selection) =>
      Object.keys((await receiveOne(url, { MessageAttributeNames: selection, VisibilityTimeout: 0 })).MessageAttributes ?? {}).sort();
    assert.deepEqual(await names(['Hel.*']), ['Hello', 'Help.Me']);
    assert.deepEqual(await names(['Custom.*']), ['Custom1']);
    for (const every of [['All'], ['.*'], ['*']]) assert.deepEqual(await names(every), Object.keys(attrs).sort(), every.join());
  });

  test('AttributeNames and MessageSystemAttributeNames: All and specific', async () => {
    const url = await newQueue();
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x' }));
    let m = await receiveOne(url, { MessageSystemAttributeNames: ['All'], VisibilityTimeout: 0 });
    assert.ok(m.Attributes.SenderId);
    assert.equal(m.Attributes.ApproximateReceiveCount, '1');
    assert.ok(Number(m.Attributes.SentTimestamp) <= Number(m.Attributes.ApproximateFirstReceiveTimestamp));
    m = await receiveOne(url, { AttributeNames: ['ApproximateReceiveCount'], VisibilityTimeout: 0 });
    assert.deepEqual(m.Attributes, { ApproximateReceiveCount: '2' });
    m = await receiveOne(url, { MessageSystemAttributeNames: ['SentTimestamp'], VisibilityTimeout: 0 });
    assert.deepEqual(Object.keys(m.Attributes), ['SentTimestamp']);
    m = await receiveOne(url, { AttributeNames: ['All'] });
    assert.equal(m.Attributes.ApproximateReceiveCount, '4');
  });

  test('MaxNumberOfMessages, VisibilityTimeout', async () => {
    const url = await newQueue();
    for (let i = 0; i < 5; i++) await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: `m${i}` }));
    const first = await receive(url, { MaxNumberOfMessages: 3, VisibilityTimeout: 1 });
    assert.ok(first.length >= 1 && first.length <= 3);
    const rest = await drain(url, 5 - first.length, { VisibilityTimeout: 30 });
    assert.deepEqual([...first, ...rest].map((m) => m.Body).sort(), ['m0', 'm1', 'm2', 'm3', 'm4']);
    // The first ones come back after their 1 s.
    const again = await drain(url, first.length);
    assert.deepEqual(again.map((m) => m.MessageId).sort(), first.map((m) => m.MessageId).sort());
  });

  test('a long poll is woken by a send from another client', async () => {
    const url = await newQueue();
    const other = daemon.client();
    const started = Date.now();
    const polling = other.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 15 }));
    await new Promise((r) => setTimeout(r, 700));
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'wake up' }));
    const r = await polling;
    other.destroy();
    assert.deepEqual(r.Messages.map((m) => m.Body), ['wake up']);
    assert.ok(Date.now() - started < 10000);
  });

  test('a long poll on an empty queue waits, then returns nothing', async () => {
    const url = await newQueue();
    const started = Date.now();
    const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 1 }));
    assert.equal(r.Messages, undefined);
    assert.ok(Date.now() - started >= 900);
  });

  test('DeleteMessage; a garbage receipt handle', async () => {
    const url = await newQueue();
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'done' }));
    const m = await receiveOne(url, { VisibilityTimeout: 1 });
    await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle }));
    assert.deepEqual(await receive(url, { WaitTimeSeconds: 2 }), []);
    await rejectsWith(sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: 'garbage' })),
      { name: 'ReceiptHandleIsInvalid', code: 'ReceiptHandleIsInvalid', status: 404, message: 'The input receipt handle is invalid.' });
  });

  test('ChangeMessageVisibility: 0 makes it visible; an expired handle; garbage handle', async () => {
    const url = await newQueue();
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'again' }));
    const m = await receiveOne(url, { VisibilityTimeout: 300 });
    assert.deepEqual(await receive(url, { WaitTimeSeconds: 0 }), []);
    await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0 }));
    // Its timeout ran out: as on AWS, 200, and the message stays visible.
    await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 300 }));
    assert.equal((await receiveOne(url, { WaitTimeSeconds: 0 })).MessageId, m.MessageId);
    await rejectsWith(
      sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: 'garbage', VisibilityTimeout: 10 })),
      { name: 'ReceiptHandleIsInvalid', message: 'The input receipt handle is invalid.' });
  });

  test('SendMessageBatch: digests per entry, failures per entry', async () => {
    const url = await newQueue();
    const entries = [
      { Id: 'plain', MessageBody: 'one' },
      { Id: 'attributes', MessageBody: 'two', MessageAttributes: ATTRIBUTES },
      { Id: 'control', MessageBody: 'bad \u0001 body' },
      { Id: 'late', MessageBody: 'x', DelaySeconds: 901 },
    ];
    const r = await sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: entries }));
    const ok = Object.fromEntries(r.Successful.map((s) => [s.Id, s]));
    assert.deepEqual(Object.keys(ok).sort(), ['attributes', 'plain']);
    assert.equal(ok.plain.MD5OfMessageBody, md5OfBody('one'));
    assert.equal(ok.attributes.MD5OfMessageAttributes, md5OfAttributes(ATTRIBUTES));
    const failed = Object.fromEntries(r.Failed.map((f) => [f.Id, f]));
    assert.equal(failed.control.Code, 'InvalidMessageContents');
    assert.equal(failed.late.Code, 'InvalidParameterValue');
    assert.ok(r.Failed.every((f) => f.SenderFault === true));
    const got = await drain(url, 2, { MessageAttributeNames: ['All'] });
    assert.deepEqual(got.map((m) => m.Body).sort(), ['one', 'two']);
  });

  test('SendMessageBatch errors: empty, more than 10, duplicate ids, bad id', async () => {
    const url = await newQueue();
    const send = (Entries) => sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries }));
    await rejectsWith(send([]), { name: 'EmptyBatchRequest', code: 'AWS.SimpleQueueService.EmptyBatchRequest' });
    await rejectsWith(send(Array.from({ length: 11 }, (_, i) => ({ Id: `e${i}`, MessageBody: 'x' }))),
      { name: 'TooManyEntriesInBatchRequest', code: 'AWS.SimpleQueueService.TooManyEntriesInBatchRequest' });
    await rejectsWith(send([{ Id: 'same', MessageBody: 'x' }, { Id: 'same', MessageBody: 'y' }]),
      { name: 'BatchEntryIdsNotDistinct', code: 'AWS.SimpleQueueService.BatchEntryIdsNotDistinct' });
    await rejectsWith(send([{ Id: 'not valid!', MessageBody: 'x' }]),
      { name: 'InvalidBatchEntryId', code: 'AWS.SimpleQueueService.InvalidBatchEntryId' });
    assert.deepEqual(await receive(url, { WaitTimeSeconds: 0 }), []);
  });

  test('DeleteMessageBatch and ChangeMessageVisibilityBatch, with a failing entry', async () => {
    const url = await newQueue();
    await sqs.send(new SendMessageBatchCommand({
      QueueUrl: url, Entries: [0, 1, 2].map((i) => ({ Id: `s${i}`, MessageBody: `m${i}` })),
    }));
    const got = await drain(url, 3, { VisibilityTimeout: 300 });
    assert.equal(got.length, 3);
    const handles = got.map((m, i) => ({ Id: `e${i}`, ReceiptHandle: m.ReceiptHandle }));
    const changed = await sqs.send(new ChangeMessageVisibilityBatchCommand({
      QueueUrl: url,
      Entries: [...handles.map((h) => ({ ...h, VisibilityTimeout: 0 })), { Id: 'bad', ReceiptHandle: 'garbage', VisibilityTimeout: 0 }],
    }));
    assert.deepEqual(changed.Successful.map((s) => s.Id).sort(), ['e0', 'e1', 'e2']);
    const notValid = 'The input receipt handle "garbage" is not a valid receipt handle.';
    assert.deepEqual(changed.Failed.map((f) => [f.Id, f.Code, f.SenderFault, f.Message]),
      [['bad', 'ReceiptHandleIsInvalid', true, notValid]]);
    const again = await drain(url, 3);
    const deleted = await sqs.send(new DeleteMessageBatchCommand({
      QueueUrl: url,
      Entries: [...again.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle })), { Id: 'bad', ReceiptHandle: 'garbage' }],
    }));
    assert.deepEqual(deleted.Successful.map((s) => s.Id).sort(), ['d0', 'd1', 'd2']);
    assert.deepEqual(deleted.Failed.map((f) => [f.Id, f.Code, f.SenderFault, f.Message]),
      [['bad', 'ReceiptHandleIsInvalid', true, notValid]]);
    const a = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }))).Attributes;
    assert.equal(a.ApproximateNumberOfMessages, '0');
    assert.equal(a.ApproximateNumberOfMessagesNotVisible, '0');
  });

  test('DeleteMessageBatch and ChangeMessageVisibilityBatch errors', async () => {
    const url = await newQueue();
    const del = (Entries) => sqs.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries }));
    const vis = (Entries) => sqs.send(new ChangeMessageVisibilityBatchCommand({ QueueUrl: url, Entries }));
    await rejectsWith(del([]), { name: 'EmptyBatchRequest' });
    await rejectsWith(vis([]), { name: 'EmptyBatchRequest' });
    await rejectsWith(del([{ Id: 'a', ReceiptHandle: 'h' }, { Id: 'a', ReceiptHandle: 'h' }]), { name: 'BatchEntryIdsNotDistinct' });
    await rejectsWith(vis(Array.from({ length: 11 }, (_, i) => ({ Id: `e${i}`, ReceiptHandle: 'h', VisibilityTimeout: 1 }))),
      { name: 'TooManyEntriesInBatchRequest' });
  });

  test('parameters out of range: InvalidParameterValue', async () => {
    const url = await newQueue();
    for (const options of [{ MaxNumberOfMessages: 11 }, { MaxNumberOfMessages: 0 }, { WaitTimeSeconds: 21 },
      { VisibilityTimeout: 43201 }]) {
      await rejectsWith(sqs.send(new ReceiveMessageCommand({ QueueUrl: url, ...options })), plainError('InvalidParameterValue'));
    }
    await rejectsWith(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x', DelaySeconds: 901 })),
      plainError('InvalidParameterValue'));
  });

  test('bodies with characters SQS refuses: InvalidMessageContents', async () => {
    const url = await newQueue();
    for (const body of ['nul \u0000', 'bell \u0007', 'non-character \ufffe']) {
      await rejectsWith(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body })),
        { name: 'InvalidMessageContents', code: 'InvalidMessageContents', status: 400 });
    }
  });

  test('every kind of allowed character round-trips', async () => {
    const url = await newQueue();
    const body = 'tab\t newline\n return\r ascii ~ bmp \ud7ff \ue000 \ufffd astral \u{1f600} \u{10ffff}';
    const sent = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body }));
    assert.equal(sent.MD5OfMessageBody, md5OfBody(body));
    assert.equal((await receiveOne(url)).Body, body);
  });

  test('invalid message attributes: InvalidParameterValue', async () => {
    const url = await newQueue();
    for (const attrs of [
      { n: { DataType: 'Number', StringValue: 'not-a-number' } },
      { e: { DataType: 'String', StringValue: '' } },
      { 'AWS.reserved': { DataType: 'String', StringValue: 'x' } },
      Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`a${i}`, { DataType: 'String', StringValue: 'x' }])),
    ]) {
      await rejectsWith(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x', MessageAttributes: attrs })),
        plainError('InvalidParameterValue'));
    }
  });

  test('a message larger than MaximumMessageSize', async () => {
    const url = await newQueue({ MaximumMessageSize: '1024' });
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x'.repeat(1024) }));
    await rejectsWith(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x'.repeat(1025) })),
      plainError('InvalidParameterValue'));
  });

  test('a maximum-size message (1 MiB) round-trips; one byte more is refused', async () => {
    const url = await newQueue();
    const body = 'é'.repeat(1048576 / 2);
    const sent = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body }));
    assert.equal(sent.MD5OfMessageBody, md5OfBody(body));
    assert.equal((await receiveOne(url)).Body, body);
    await rejectsWith(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: `${body}x` })),
      plainError('InvalidParameterValue'));
  });
});
