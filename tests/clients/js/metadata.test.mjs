// Queue metadata through @aws-sdk/client-sqs (JSON protocol): TagQueue,
// UntagQueue, ListQueueTags, AddPermission, RemovePermission,
// ListDeadLetterSourceQueues, dead-letter redrive, StartMessageMoveTask,
// ListMessageMoveTasks, CancelMessageMoveTask.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AddPermissionCommand, CancelMessageMoveTaskCommand, CreateQueueCommand, GetQueueAttributesCommand,
  ListDeadLetterSourceQueuesCommand, ListMessageMoveTasksCommand, ListQueueTagsCommand, ReceiveMessageCommand,
  RemovePermissionCommand, SendMessageBatchCommand, SendMessageCommand, StartMessageMoveTaskCommand, TagQueueCommand,
  UntagQueueCommand,
} from '@aws-sdk/client-sqs';
import { daemonForSuite, unique } from './lib/daemon.mjs';
import { plainError, rejectsWith } from './lib/assertions.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function eventually(probe, timeoutMs = 8000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value || Date.now() > deadline) return value;
    await sleep(100);
  }
}

describe('queue metadata', () => {
  let daemon;
  let sqs;
  daemonForSuite((d, client) => {
    daemon = d;
    sqs = client;
  });
  const create = async (stem, Attributes, tags) =>
    (await sqs.send(new CreateQueueCommand({ QueueName: unique(stem), Attributes, tags }))).QueueUrl;
  const arnOf = async (QueueUrl) =>
    (await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }))).Attributes.QueueArn;
  const receive = async (QueueUrl, options = {}) =>
    (await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, ...options }))).Messages ?? [];
  const redrive = async (maxReceiveCount = 1) => {
    const dlq = await create('dlq');
    const source = await create('source', {
      VisibilityTimeout: '1',
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: await arnOf(dlq), maxReceiveCount: String(maxReceiveCount) }),
    });
    return { source, dlq };
  };

  test('TagQueue, ListQueueTags, UntagQueue; tags at creation', async () => {
    const url = await create('tags');
    assert.deepEqual((await sqs.send(new ListQueueTagsCommand({ QueueUrl: url }))).Tags ?? {}, {});
    await sqs.send(new TagQueueCommand({ QueueUrl: url, Tags: { team: 'payments', env: 'test' } }));
    await sqs.send(new UntagQueueCommand({ QueueUrl: url, TagKeys: ['env', 'absent'] }));
    assert.deepEqual((await sqs.send(new ListQueueTagsCommand({ QueueUrl: url }))).Tags, { team: 'payments' });
    const tagged = await create('tagged', undefined, { owner: 'me' });
    assert.deepEqual((await sqs.send(new ListQueueTagsCommand({ QueueUrl: tagged }))).Tags, { owner: 'me' });
    await rejectsWith(sqs.send(new ListQueueTagsCommand({ QueueUrl: daemon.queueUrl('no-such-queue') })),
      { name: 'QueueDoesNotExist' });
  });

  test('tag errors in AWS\'s words', async () => {
    const url = await create('tag-errors');
    const name = url.split('/').pop();
    await assert.rejects(sqs.send(new TagQueueCommand({ QueueUrl: url, Tags: {} })), (e) => {
      assert.equal(e.Code, 'MissingParameter');
      assert.equal(e.message, 'The request must contain the parameter Tags.');
      return true;
    });
    await assert.rejects(sqs.send(new UntagQueueCommand({ QueueUrl: url, TagKeys: [] })), (e) => {
      assert.equal(e.message, 'The request must contain the parameter TagKeys.');
      return true;
    });
    const many = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'v']));
    await assert.rejects(sqs.send(new TagQueueCommand({ QueueUrl: url, Tags: many })), (e) => {
      assert.equal(e.Code, 'InvalidParameterValue');
      assert.equal(e.message, `Too many tags added for queue ${name}.`);
      return true;
    });
    assert.deepEqual((await sqs.send(new ListQueueTagsCommand({ QueueUrl: url }))).Tags ?? {}, {});
  });

  test('AddPermission and RemovePermission write the Policy attribute', async () => {
    const url = await create('perm');
    const arn = await arnOf(url);
    await sqs.send(new AddPermissionCommand({
      QueueUrl: url, Label: 'producers', AWSAccountIds: ['111122223333'], Actions: ['SendMessage', 'ReceiveMessage'],
    }));
    const a = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['Policy'] }))).Attributes;
    const policy = JSON.parse(a.Policy);
    assert.equal(policy.Version, '2008-10-17');
    assert.equal(policy.Id, `${arn}/SQSDefaultPolicy`);
    assert.equal(policy.Statement.length, 1);
    const [s] = policy.Statement;
    assert.equal(s.Sid, 'producers');
    assert.equal(s.Effect, 'Allow');
    assert.equal(s.Resource, arn);
    assert.equal(s.Principal.AWS, 'arn:aws:iam::111122223333:root', 'one principal: a string, as on AWS');
    assert.deepEqual([s.Action].flat().map((x) => x.toLowerCase()).sort(), ['sqs:receivemessage', 'sqs:sendmessage']);
    await rejectsWith(sqs.send(new AddPermissionCommand({
      QueueUrl: url, Label: 'producers', AWSAccountIds: ['111122223333'], Actions: ['SendMessage'],
    })), plainError('InvalidParameterValue'));
    await sqs.send(new RemovePermissionCommand({ QueueUrl: url, Label: 'producers' }));
    const after = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['Policy'] }))).Attributes;
    assert.ok(!after?.Policy || (JSON.parse(after.Policy).Statement ?? []).length === 0);
    await rejectsWith(sqs.send(new RemovePermissionCommand({ QueueUrl: url, Label: 'producers' })),
      plainError('InvalidParameterValue'));
  });

  test('ListDeadLetterSourceQueues', async () => {
    const { source, dlq } = await redrive(3);
    assert.deepEqual((await sqs.send(new ListDeadLetterSourceQueuesCommand({ QueueUrl: dlq }))).queueUrls, [source]);
    assert.deepEqual((await sqs.send(new ListDeadLetterSourceQueuesCommand({ QueueUrl: source }))).queueUrls, []);
  });

  test('a message past maxReceiveCount goes to the DLQ; StartMessageMoveTask moves it back', async () => {
    const { source, dlq } = await redrive(1);
    const [sourceArn, dlqArn] = [await arnOf(source), await arnOf(dlq)];
    const sent = await sqs.send(new SendMessageCommand({ QueueUrl: source, MessageBody: 'poison' }));
    assert.deepEqual((await receive(source, { WaitTimeSeconds: 5 })).map((m) => m.MessageId), [sent.MessageId]);
    const moved = await eventually(async () => {
      assert.deepEqual(await receive(source), [], 'received past maxReceiveCount');
      const got = await receive(dlq, { MessageSystemAttributeNames: ['All'], VisibilityTimeout: 0 });
      return got.length ? got : null;
    });
    assert.ok(moved, 'the message did not reach the dead-letter queue');
    assert.equal(moved[0].MessageId, sent.MessageId);
    assert.equal(moved[0].Attributes.DeadLetterQueueSourceArn, sourceArn);
    assert.equal(moved[0].Attributes.ApproximateReceiveCount, '2', 'its receives go on counting, as on AWS');

    const { TaskHandle } = await sqs.send(new StartMessageMoveTaskCommand({ SourceArn: dlqArn }));
    assert.ok(TaskHandle);
    const back = await eventually(async () => {
      const got = await receive(source, { VisibilityTimeout: 30 });
      return got.length ? got : null;
    });
    assert.deepEqual(back?.map((m) => m.Body), ['poison']);
    const done = await eventually(async () => {
      const { Results } = await sqs.send(new ListMessageMoveTasksCommand({ SourceArn: dlqArn }));
      return Results?.[0]?.Status === 'COMPLETED' ? Results : null;
    });
    assert.ok(done, 'the move task did not complete');
    assert.equal(done[0].SourceArn, dlqArn);
    assert.equal(done[0].ApproximateNumberOfMessagesMoved, 1);
  });

  test('CancelMessageMoveTask, ListMessageMoveTasks of a running task', async () => {
    const { dlq } = await redrive(3);
    const elsewhere = await create('elsewhere');
    const [dlqArn, elsewhereArn] = [await arnOf(dlq), await arnOf(elsewhere)];
    await sqs.send(new SendMessageBatchCommand({
      QueueUrl: dlq, Entries: Array.from({ length: 10 }, (_, i) => ({ Id: `m${i}`, MessageBody: `m${i}` })),
    }));
    const { TaskHandle } = await sqs.send(new StartMessageMoveTaskCommand({
      SourceArn: dlqArn, DestinationArn: elsewhereArn, MaxNumberOfMessagesPerSecond: 1,
    }));
    const { Results } = await sqs.send(new ListMessageMoveTasksCommand({ SourceArn: dlqArn, MaxResults: 10 }));
    assert.equal(Results[0].TaskHandle, TaskHandle);
    assert.equal(Results[0].Status, 'RUNNING');
    assert.equal(Results[0].DestinationArn, elsewhereArn);
    assert.equal(Results[0].MaxNumberOfMessagesPerSecond, 1);
    await assert.rejects(sqs.send(new StartMessageMoveTaskCommand({ SourceArn: dlqArn })), (e) => {
      assert.equal(e.Code, 'InvalidParameterValue');
      assert.equal(e.message, 'There is already a task running. Only one active task is allowed for a source queue '
        + 'arn at a given time.');
      return true;
    });
    const cancelled = await sqs.send(new CancelMessageMoveTaskCommand({ TaskHandle }));
    assert.ok(cancelled.ApproximateNumberOfMessagesMoved >= 0 && cancelled.ApproximateNumberOfMessagesMoved < 10);
    const status = await eventually(async () => {
      const r = await sqs.send(new ListMessageMoveTasksCommand({ SourceArn: dlqArn }));
      return r.Results[0].Status === 'CANCELLED';
    });
    assert.ok(status, 'the task was not cancelled');
  });

  test('move task errors, in AWS\'s words', async () => {
    const failsWith = (promise, message) => assert.rejects(promise, (e) => {
      assert.equal(e.Code, 'InvalidParameterValue');
      assert.equal(e.$metadata?.httpStatusCode, 400);
      assert.equal(e.message, message);
      return true;
    });
    await failsWith(sqs.send(new CancelMessageMoveTaskCommand({ TaskHandle: 'not-a-task-handle' })),
      'Value for parameter TaskHandle is invalid.');
    const plain = await create('plain');
    await failsWith(sqs.send(new StartMessageMoveTaskCommand({ SourceArn: await arnOf(plain) })),
      'Source queue must be configured as a Dead Letter Queue.');
  });
});
