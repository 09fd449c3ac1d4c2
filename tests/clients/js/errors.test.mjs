// Every error shape of the SQS API model, as the SDK itself carries it
// (its exported error schemas: shape name, awsQueryError code and status):
// each shape shmq raises is raised here by a real request, and must come
// back as the SDK's own exception class with the model's Query code (Code,
// from x-amzn-query-error) and HTTP status. The shapes shmq never raises are
// listed; a shape a newer model adds fails this test until it is placed.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as sdk from '@aws-sdk/client-sqs';
import {
  AddPermissionCommand, ChangeMessageVisibilityCommand, CreateQueueCommand, DeleteMessageCommand, GetQueueUrlCommand,
  ListMessageMoveTasksCommand, PurgeQueueCommand, ReceiveMessageCommand, SendMessageBatchCommand, SendMessageCommand,
  SetQueueAttributesCommand,
} from '@aws-sdk/client-sqs';
import { daemonForSuite, unique } from './lib/daemon.mjs';

// The model's error shapes: [-3, namespace, name, traits, ...] exported as NAME$.
const modelErrors = Object.values(sdk)
  .filter((s) => Array.isArray(s) && s[0] === -3 && s[1] === 'com.amazonaws.sqs')
  .map(([, , name, traits]) => ({
    name,
    code: traits.awsQueryError?.[0] ?? name,
    status: traits.awsQueryError?.[1] ?? traits.httpError ?? 400,
  }));

// What shmq has no occasion to raise: KMS (SSE-KMS keys are accepted but
// never used), throttling, request signing by an unknown endpoint (InvalidAddress,
// InvalidSecurity), the deprecated InvalidIdFormat, and QueueDeletedRecently
// (a deleted queue's name is free at once).
const NEVER_RAISED = [
  'InvalidAddress', 'InvalidIdFormat', 'InvalidSecurity', 'KmsAccessDenied', 'KmsDisabled', 'KmsInvalidKeyUsage',
  'KmsInvalidState', 'KmsNotFound', 'KmsOptInRequired', 'KmsThrottled', 'QueueDeletedRecently', 'RequestThrottled',
];

describe('every error shape of the SQS model', () => {
  let daemon;
  let sqs;
  daemonForSuite((d, client) => {
    daemon = d;
    sqs = client;
  });
  const newQueue = async (stem, Attributes) =>
    (await sqs.send(new CreateQueueCommand({ QueueName: unique(stem), Attributes }))).QueueUrl;
  const entries = (n, body = 'x') => Array.from({ length: n }, (_, i) => ({ Id: `e${i}`, MessageBody: body }));

  // Shape name -> a request that makes shmq raise it.
  const triggers = {
    BatchEntryIdsNotDistinct: async () => sqs.send(new SendMessageBatchCommand({
      QueueUrl: await newQueue('q'), Entries: [{ Id: 'a', MessageBody: 'x' }, { Id: 'a', MessageBody: 'y' }],
    })),
    BatchRequestTooLong: async () => sqs.send(new SendMessageBatchCommand({
      QueueUrl: await newQueue('q'), Entries: entries(2, 'x'.repeat(600 * 1024)),
    })),
    EmptyBatchRequest: async () => sqs.send(new SendMessageBatchCommand({ QueueUrl: await newQueue('q'), Entries: [] })),
    InvalidAttributeName: async () => newQueue('q', { NoSuchAttribute: '1' }),
    InvalidAttributeValue: async () => sqs.send(new SetQueueAttributesCommand({
      QueueUrl: await newQueue('q'), Attributes: { VisibilityTimeout: '43201' },
    })),
    InvalidBatchEntryId: async () => sqs.send(new SendMessageBatchCommand({
      QueueUrl: await newQueue('q'), Entries: [{ Id: 'not valid!', MessageBody: 'x' }],
    })),
    InvalidMessageContents: async () => sqs.send(new SendMessageCommand({ QueueUrl: await newQueue('q'), MessageBody: 'nul \u0000' })),
    MessageNotInflight: async () => {
      // A FIFO message made visible again is not in flight any more.
      const url = (await sqs.send(new CreateQueueCommand({
        QueueName: `${unique('q')}.fifo`, Attributes: { FifoQueue: 'true' },
      }))).QueueUrl;
      await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x', MessageGroupId: 'g', MessageDeduplicationId: 'd' }));
      const [m] = (await sqs.send(new ReceiveMessageCommand({ QueueUrl: url }))).Messages;
      await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0 }));
      return sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 5 }));
    },
    OverLimit: async () => sqs.send(new AddPermissionCommand({
      QueueUrl: await newQueue('q'), Label: 'l', AWSAccountIds: ['111111111111'],
      Actions: ['SendMessage', 'ReceiveMessage', 'DeleteMessage', 'ChangeMessageVisibility', 'GetQueueAttributes',
        'GetQueueUrl', 'PurgeQueue', 'ListDeadLetterSourceQueues'],
    })),
    PurgeQueueInProgress: async () => {
      const url = await newQueue('q');
      await sqs.send(new PurgeQueueCommand({ QueueUrl: url }));
      return sqs.send(new PurgeQueueCommand({ QueueUrl: url }));
    },
    QueueDoesNotExist: async () => sqs.send(new GetQueueUrlCommand({ QueueName: 'never-created' })),
    QueueNameExists: async () => {
      const name = unique('q');
      await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { DelaySeconds: '1' } }));
      return sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { DelaySeconds: '2' } }));
    },
    ReceiptHandleIsInvalid: async () => sqs.send(new DeleteMessageCommand({ QueueUrl: await newQueue('q'), ReceiptHandle: 'garbage' })),
    ResourceNotFoundException: async () => sqs.send(new ListMessageMoveTasksCommand({
      SourceArn: 'arn:aws:sqs:us-east-1:000000000000:no-such-queue',
    })),
    TooManyEntriesInBatchRequest: async () => sqs.send(new SendMessageBatchCommand({ QueueUrl: await newQueue('q'), Entries: entries(11) })),
    UnsupportedOperation: async () => sqs.send(new SendMessageCommand({
      QueueUrl: await newQueue('q'), MessageBody: 'x', MessageAttributes: { a: { DataType: 'String', StringListValues: ['v'] } },
    })),
  };

  test('the SDK model lists each shape once, and each is raised here or listed as never raised', () => {
    const names = modelErrors.map((e) => e.name).sort();
    assert.ok(names.length >= 28, `the SDK exports its error schemas (${names.length} found)`);
    assert.deepEqual(names, [...Object.keys(triggers), ...NEVER_RAISED].sort());
  });

  for (const { name, code, status } of modelErrors) {
    if (NEVER_RAISED.includes(name)) continue;
    test(`${name}: the SDK's ${name}, Code ${code}, HTTP ${status}`, async () => {
      assert.ok(triggers[name], `no request raises ${name}`);
      await assert.rejects(triggers[name](), (e) => {
        assert.ok(e instanceof sdk[name], `${e.name} (${e.message}) is the SDK's ${name}`);
        assert.equal(e.name, name);
        assert.equal(e.Code, code, e.message);
        assert.equal(e.$metadata?.httpStatusCode, status, e.message);
        assert.ok(e.message && e.message !== 'UnknownError', 'it carries a message');
        return true;
      });
    });
  }

  // The errors without a shape of their own: AWS's JSON names, with the Query
  // code in x-amzn-query-error (what SDKs show as the code).
  for (const [label, body, type, code] of [
    ['InvalidParameterValue', { MessageBody: 'x', DelaySeconds: 901 }, 'InvalidParameterValueException', 'InvalidParameterValue'],
    ['MissingParameter', {}, 'MissingRequiredParameterException', 'MissingParameter'],
  ]) {
    test(`${label} on the wire: __type com.amazonaws.sqs#${type}`, async () => {
      const url = await newQueue('q');
      const answer = await fetch(daemon.endpoint, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-amz-json-1.0', 'X-Amz-Target': 'AmazonSQS.SendMessage' },
        body: JSON.stringify({ QueueUrl: url, ...body }),
      });
      assert.equal(answer.status, 400);
      assert.equal(answer.headers.get('x-amzn-query-error'), `${code};Sender`);
      const doc = await answer.json();
      assert.equal(doc.__type, `com.amazonaws.sqs#${type}`);
      assert.ok(doc.message);
    });
  }
});
