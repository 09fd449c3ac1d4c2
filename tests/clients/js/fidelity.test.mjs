// What Amazon SQS answers, through @aws-sdk/client-sqs (JSON protocol), where
// the other files do not pin it down yet: FIFO delays, expired and deleted
// receipt handles, what a message keeps in a dead-letter queue, queue
// attributes, AddPermission's policy, queue URLs for a Host without a port,
// and error texts in AWS's words (the error shapes: errors.test.mjs).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import {
  AddPermissionCommand, ChangeMessageVisibilityBatchCommand, ChangeMessageVisibilityCommand, CreateQueueCommand,
  DeleteMessageBatchCommand, DeleteMessageCommand, GetQueueAttributesCommand, ReceiveMessageCommand,
  RemovePermissionCommand, SendMessageBatchCommand, SendMessageCommand, SetQueueAttributesCommand,
} from '@aws-sdk/client-sqs';
import { ACCOUNT, daemonForSuite, unique } from './lib/daemon.mjs';
import { plainError, rejectsWith } from './lib/assertions.mjs';

const TRACE = 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function eventually(probe, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value || Date.now() > deadline) return value;
    await sleep(100);
  }
}
// Rejects with exactly this Query code (e.Code) and message.
const failsWith = (promise, code, message) => assert.rejects(promise, (e) => {
  assert.equal(e.Code, code, e.message);
  assert.equal(e.message, message);
  return true;
});

describe('SQS fidelity', () => {
  let daemon;
  let sqs;
  daemonForSuite((d, client) => {
    daemon = d;
    sqs = client;
  });
  const create = async (stem, Attributes) =>
    (await sqs.send(new CreateQueueCommand({ QueueName: unique(stem), Attributes }))).QueueUrl;
  const createFifo = async (Attributes = {}) => (await sqs.send(new CreateQueueCommand({
    QueueName: `${unique('f')}.fifo`, Attributes: { FifoQueue: 'true', ...Attributes },
  }))).QueueUrl;
  const attributes = async (QueueUrl, AttributeNames = ['All']) =>
    (await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames }))).Attributes ?? {};
  const receive = async (QueueUrl, options = {}) =>
    (await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, ...options }))).Messages ?? [];
  const receiveOne = async (QueueUrl, options = {}) => {
    const got = await receive(QueueUrl, { WaitTimeSeconds: 5, ...options });
    assert.equal(got.length, 1, JSON.stringify(got));
    return got[0];
  };
  // A request as the SDK would send it, answered raw: [status, headers, parsed body].
  const call = async (action, body) => {
    const r = await fetch(daemon.endpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-amz-json-1.0', 'X-Amz-Target': `AmazonSQS.${action}` },
      body: JSON.stringify(body),
    });
    return [r.status, r.headers, await r.json()];
  };

  test('FIFO: a non-zero per-message DelaySeconds is refused in AWS\'s words, single and in a batch', async () => {
    const url = await createFifo();
    const refused = 'Value 2 for parameter DelaySeconds is invalid. Reason: The request include parameter that is not '
      + 'valid for this queue type.';
    await failsWith(sqs.send(new SendMessageCommand({
      QueueUrl: url, MessageBody: 'x', MessageGroupId: 'g', MessageDeduplicationId: 'd1', DelaySeconds: 2,
    })), 'InvalidParameterValue', refused);
    const r = await sqs.send(new SendMessageBatchCommand({
      QueueUrl: url, Entries: [{ Id: 'late', MessageBody: 'x', MessageGroupId: 'g', MessageDeduplicationId: 'd2', DelaySeconds: 2 }],
    }));
    assert.deepEqual(r.Failed.map((f) => [f.Id, f.Code, f.Message]), [['late', 'InvalidParameterValue', refused]]);
  });

  test('a standard queue deletes with a handle whose visibility timeout ran out, as on AWS', async () => {
    const url = await create('q');
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'late delete' }));
    const m = await receiveOne(url, { VisibilityTimeout: 1 });
    const visibleAgain = await eventually(async () => {
      const a = await attributes(url, ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible']);
      return a.ApproximateNumberOfMessages === '1' && a.ApproximateNumberOfMessagesNotVisible === '0';
    });
    assert.ok(visibleAgain, 'the message did not become visible again');
    await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle }));
    const a = await attributes(url, ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible']);
    assert.deepEqual([a.ApproximateNumberOfMessages, a.ApproximateNumberOfMessagesNotVisible], ['0', '0']);
    assert.deepEqual(await receive(url), []);
  });

  test('ChangeMessageVisibility of a deleted message: InvalidParameterValue in AWS\'s words', async () => {
    const url = await create('q');
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x' }));
    const m = await receiveOne(url);
    await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle }));
    await failsWith(
      sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 10 })),
      'InvalidParameterValue',
      `Value ${m.ReceiptHandle} for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not `
        + 'available for visibility timeout change.');
  });

  test('a message moved to the dead-letter queue keeps its body, attributes and AWSTraceHeader', async () => {
    const dlq = await create('dlq');
    const dlqArn = (await attributes(dlq, ['QueueArn'])).QueueArn;
    const source = await create('source', {
      VisibilityTimeout: '1', RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: '1' }),
    });
    const sourceArn = (await attributes(source, ['QueueArn'])).QueueArn;
    const userAttributes = { color: { DataType: 'String', StringValue: 'red' }, count: { DataType: 'Number', StringValue: '7' } };
    const sent = await sqs.send(new SendMessageCommand({
      QueueUrl: source, MessageBody: 'poison', MessageAttributes: userAttributes,
      MessageSystemAttributes: { AWSTraceHeader: { DataType: 'String', StringValue: TRACE } },
    }));
    assert.equal((await receiveOne(source)).MessageId, sent.MessageId);
    const moved = await eventually(async () => {
      await receive(source); // what moves it, once its visibility ran out
      const got = await receive(dlq, { MessageSystemAttributeNames: ['All'], MessageAttributeNames: ['All'] });
      return got.length ? got : null;
    });
    assert.ok(moved, 'the message did not reach the dead-letter queue');
    const [m] = moved;
    assert.deepEqual([m.MessageId, m.Body], [sent.MessageId, 'poison']);
    assert.deepEqual(Object.fromEntries(Object.entries(m.MessageAttributes ?? {})
      .map(([k, v]) => [k, { DataType: v.DataType, StringValue: v.StringValue }])), userAttributes);
    assert.equal(m.MD5OfMessageAttributes, sent.MD5OfMessageAttributes);
    assert.equal(m.Attributes.AWSTraceHeader, TRACE);
    assert.equal(m.Attributes.DeadLetterQueueSourceArn, sourceArn);
    assert.equal(m.Attributes.ApproximateReceiveCount, '2');
  });

  test('an AWSTraceHeader the message sets wins over the X-Amzn-Trace-Id header', async () => {
    const url = await create('q');
    const own = 'Root=1-00000000-000000000000000000000000;Sampled=0';
    const command = new SendMessageCommand({
      QueueUrl: url, MessageBody: 'its own', MessageSystemAttributes: { AWSTraceHeader: { DataType: 'String', StringValue: own } },
    });
    command.middlewareStack.add((next) => (args) => {
      args.request.headers['x-amzn-trace-id'] = TRACE;
      return next(args);
    }, { step: 'build', name: 'traceHeader' });
    await sqs.send(command);
    assert.deepEqual((await receiveOne(url, { MessageSystemAttributeNames: ['AWSTraceHeader'] })).Attributes,
      { AWSTraceHeader: own });
  });

  test('SetQueueAttributes FifoQueue=false on a standard queue: "Unknown Attribute FifoQueue."', async () => {
    const url = await create('std');
    await rejectsWith(sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: { FifoQueue: 'false' } })),
      { name: 'InvalidAttributeName', code: 'InvalidAttributeName', message: 'Unknown Attribute FifoQueue.' });
  });

  test('CreateQueue with FifoQueue=true of an existing FIFO queue is accepted', async () => {
    const url = await createFifo();
    const again = await sqs.send(new CreateQueueCommand({ QueueName: url.split('/').pop(), Attributes: { FifoQueue: 'true' } }));
    assert.equal(again.QueueUrl, url);
  });

  test('GetQueueAttributes of an unknown name: "Unknown Attribute NAME."', async () => {
    const url = await create('q');
    await rejectsWith(sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['NoSuchThing'] })),
      { name: 'InvalidAttributeName', message: 'Unknown Attribute NoSuchThing.' });
  });

  test('an empty MessageGroupId on a standard queue: InvalidParameterValue', async () => {
    const url = await create('q');
    await rejectsWith(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x', MessageGroupId: '' })),
      plainError('InvalidParameterValue'));
    assert.deepEqual(await receive(url), []);
  });

  test('a message over the queue\'s MaximumMessageSize, in AWS\'s words; in a batch it fails alone', async () => {
    const url = await create('small', { MaximumMessageSize: '1024' });
    const tooLarge = 'One or more parameters are invalid. Reason: Message must be shorter than 1024 bytes.';
    await failsWith(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x'.repeat(1025) })),
      'InvalidParameterValue', tooLarge);
    const r = await sqs.send(new SendMessageBatchCommand({
      QueueUrl: url, Entries: [{ Id: 'big', MessageBody: 'b'.repeat(2000) }, { Id: 'fits', MessageBody: 'f'.repeat(10) }],
    }));
    assert.deepEqual(r.Successful.map((s) => s.Id), ['fits']);
    assert.deepEqual(r.Failed.map((f) => [f.Id, f.Code, f.Message]), [['big', 'InvalidParameterValue', tooLarge]]);
  });

  test('AddPermission: one action a string, several principals a list, as AWS writes the policy', async () => {
    const url = await create('perm');
    await sqs.send(new AddPermissionCommand({
      QueueUrl: url, Label: 'producers', AWSAccountIds: ['111111111111', '222222222222'], Actions: ['SendMessage'],
    }));
    const [s] = JSON.parse((await attributes(url, ['Policy'])).Policy).Statement;
    assert.equal(s.Sid, 'producers');
    assert.equal(s.Action, 'SQS:SendMessage');
    assert.deepEqual(s.Principal, { AWS: ['arn:aws:iam::111111111111:root', 'arn:aws:iam::222222222222:root'] });
  });

  test('permission label errors in AWS\'s words', async () => {
    const url = await create('perm');
    const add = () => sqs.send(new AddPermissionCommand({
      QueueUrl: url, Label: 'once', AWSAccountIds: ['111122223333'], Actions: ['SendMessage'],
    }));
    await add();
    await failsWith(add(), 'InvalidParameterValue', 'Value once for parameter Label is invalid. Reason: Already exists.');
    await failsWith(sqs.send(new RemovePermissionCommand({ QueueUrl: url, Label: 'never' })), 'InvalidParameterValue',
      'Value never for parameter Label is invalid. Reason: can\'t find label.');
  });

  test('DeleteMessageBatch and ChangeMessageVisibilityBatch errors in AWS\'s words; a bad entry id', async () => {
    const url = await create('q');
    for (const [Command, entryType, extra] of [
      [DeleteMessageBatchCommand, 'DeleteMessageBatchRequestEntry', {}],
      [ChangeMessageVisibilityBatchCommand, 'ChangeMessageVisibilityBatchRequestEntry', { VisibilityTimeout: 1 }],
    ]) {
      const batch = (Entries) => sqs.send(new Command({ QueueUrl: url, Entries }));
      const entry = (Id) => ({ Id, ReceiptHandle: 'h', ...extra });
      await failsWith(batch([]), 'AWS.SimpleQueueService.EmptyBatchRequest',
        `There should be at least one ${entryType} in the request.`);
      await failsWith(batch(Array.from({ length: 11 }, (_, i) => entry(`e${i}`))),
        'AWS.SimpleQueueService.TooManyEntriesInBatchRequest', 'Maximum number of entries per request are 10. You have sent 11.');
      await failsWith(batch([entry('same'), entry('same')]), 'AWS.SimpleQueueService.BatchEntryIdsNotDistinct',
        'Id same repeated.');
    }
    await failsWith(sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: [{ Id: 'a b', MessageBody: 'x' }] })),
      'AWS.SimpleQueueService.InvalidBatchEntryId',
      'A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.');
  });

  for (const [label, messageAttributes, message] of [
    ['a bad name', { 'has space': { DataType: 'String', StringValue: 'x' } },
      'The message attribute name \'has space\' is invalid. Attribute name can contain A-Z, a-z, 0-9, underscore (_), '
        + 'hyphen (-), and period (.) characters.'],
    ['a bad type', { t: { DataType: 'Integer', StringValue: '1' } },
      'The message attribute \'t\' has an invalid message attribute type, the set of supported type prefixes is Binary, '
        + 'Number, and String.'],
    ['an empty value', { e: { DataType: 'String', StringValue: '' } },
      'Message (user) attribute \'e\' must contain a non-empty value of type \'String\'.'],
  ]) {
    test(`a message attribute with ${label}: InvalidParameterValue in AWS's words`, async () => {
      const url = await create('q');
      await failsWith(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x', MessageAttributes: messageAttributes })),
        'InvalidParameterValue', message);
    });
  }

  test('a queue URL names the port the request arrived on when the Host header names none', async () => {
    const name = unique('portless');
    const body = JSON.stringify({ QueueName: name });
    const answer = await new Promise((resolve, reject) => {
      const socket = connect(daemon.port, '127.0.0.1', () => {
        socket.end(`POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.0\r\n`
          + `X-Amz-Target: AmazonSQS.CreateQueue\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      });
      const chunks = [];
      socket.on('data', (c) => chunks.push(c));
      socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      socket.on('error', reject);
    });
    const [head, reply] = answer.split('\r\n\r\n');
    assert.match(head, /^HTTP\/1\.1 200 /, answer);
    assert.equal(JSON.parse(reply).QueueUrl, `http://127.0.0.1:${daemon.port}/${ACCOUNT}/${name}`);
  });
});
