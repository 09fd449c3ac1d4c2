// AWS SDK for Go v1 (Debian's golang-github-aws-aws-sdk-go-dev) against a
// real shmqd. For SQS this SDK speaks the Query protocol: form-encoded POSTs
// with Action=..., XML answers (service/sqs/service.go installs the
// private/protocol/query handlers; the JSON protocol came to SQS in later
// releases). The SDK itself checks MD5OfMessageBody of SendMessage,
// SendMessageBatch and ReceiveMessage (service/sqs/checksums.go) and fails
// the call on a mismatch; MD5OfMessageAttributes is checked here against
// shmqtest.MD5OfAttributes.
package v1

import (
	"context"
	"errors"
	"math/big"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/awserr"
	"github.com/aws/aws-sdk-go/aws/credentials"
	"github.com/aws/aws-sdk-go/aws/session"
	"github.com/aws/aws-sdk-go/service/sqs"

	"../shmqtest"
)

var daemon *shmqtest.Daemon

func TestMain(m *testing.M) {
	os.Exit(shmqtest.Run(m, &daemon))
}

// newClient is an SQS client for the daemon: dummy static credentials, no
// shared config, no retries that could hide an error, and the SDK's MD5
// checks explicitly on.
func newClient(t *testing.T) *sqs.SQS {
	t.Helper()
	sess, err := session.NewSessionWithOptions(session.Options{
		Config: aws.Config{
			Region:                  aws.String(shmqtest.Region),
			Endpoint:                aws.String(daemon.Endpoint),
			Credentials:             credentials.NewStaticCredentials(shmqtest.AccessKey, shmqtest.SecretKey, ""),
			MaxRetries:              aws.Int(0),
			DisableComputeChecksums: aws.Bool(false),
			HTTPClient:              &http.Client{Timeout: 30 * time.Second},
		},
		SharedConfigState: session.SharedConfigDisable,
	})
	if err != nil {
		t.Fatalf("session: %v", err)
	}
	return sqs.New(sess)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// createQueue creates the queue and checks the URL the bridge hands out.
func createQueue(ctx context.Context, t *testing.T, client *sqs.SQS, name string, attributes map[string]string) string {
	t.Helper()
	in := &sqs.CreateQueueInput{QueueName: aws.String(name)}
	if attributes != nil {
		in.Attributes = aws.StringMap(attributes)
	}
	out, err := client.CreateQueueWithContext(ctx, in)
	if err != nil {
		t.Fatalf("CreateQueue %s: %v", name, err)
	}
	if got, want := aws.StringValue(out.QueueUrl), daemon.QueueURL(name); got != want {
		t.Fatalf("CreateQueue %s: QueueUrl %q, want %q", name, got, want)
	}
	return aws.StringValue(out.QueueUrl)
}

func TestStandardQueueSendReceiveDelete(t *testing.T) {
	ctx := testContext(t)
	client := newClient(t)
	url := createQueue(ctx, t, client, shmqtest.Unique("go-v1-standard"), nil)

	// Non-ASCII and XML metacharacters: the body goes form-encoded out and
	// comes back inside XML.
	body := "héllo <shmq> & \"go\" 🐟"
	sent := map[string]shmqtest.Attribute{
		"colour": {DataType: "String", StringValue: "blue"},
		"count":  {DataType: "Number", StringValue: "42.5"},
		"blob":   {DataType: "Binary", BinaryValue: []byte{0x00, 0x01, 0xfe, 0xff}},
	}
	attributes := map[string]*sqs.MessageAttributeValue{}
	for name, a := range sent {
		v := &sqs.MessageAttributeValue{DataType: aws.String(a.DataType)}
		if a.BinaryValue != nil {
			v.BinaryValue = a.BinaryValue
		} else {
			v.StringValue = aws.String(a.StringValue)
		}
		attributes[name] = v
	}

	// A wrong MD5OfMessageBody would have failed the call (InvalidChecksum).
	out, err := client.SendMessageWithContext(ctx, &sqs.SendMessageInput{
		QueueUrl:          aws.String(url),
		MessageBody:       aws.String(body),
		MessageAttributes: attributes,
	})
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	if aws.StringValue(out.MessageId) == "" {
		t.Errorf("SendMessage: no MessageId")
	}
	if got, want := aws.StringValue(out.MD5OfMessageBody), shmqtest.MD5OfBody(body); got != want {
		t.Errorf("SendMessage: MD5OfMessageBody %q, want %q", got, want)
	}
	if got, want := aws.StringValue(out.MD5OfMessageAttributes), shmqtest.MD5OfAttributes(sent); got != want {
		t.Errorf("SendMessage: MD5OfMessageAttributes %q, want %q", got, want)
	}

	received, err := client.ReceiveMessageWithContext(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:              aws.String(url),
		AttributeNames:        aws.StringSlice([]string{"All"}),
		MessageAttributeNames: aws.StringSlice([]string{"All"}),
		WaitTimeSeconds:       aws.Int64(5),
	})
	if err != nil {
		t.Fatalf("ReceiveMessage: %v", err)
	}
	if len(received.Messages) != 1 {
		t.Fatalf("ReceiveMessage: %d messages, want 1", len(received.Messages))
	}
	msg := received.Messages[0]
	if got, want := aws.StringValue(msg.MessageId), aws.StringValue(out.MessageId); got != want {
		t.Errorf("MessageId %q, want %q (SendMessage's)", got, want)
	}
	if got := aws.StringValue(msg.Body); got != body {
		t.Errorf("Body %q, want %q", got, body)
	}
	if got, want := aws.StringValue(msg.MD5OfMessageAttributes), shmqtest.MD5OfAttributes(sent); got != want {
		t.Errorf("MD5OfMessageAttributes %q, want %q", got, want)
	}
	if len(msg.MessageAttributes) != len(sent) {
		t.Errorf("%d message attributes, want %d: %v", len(msg.MessageAttributes), len(sent), msg.MessageAttributes)
	}
	for name, want := range sent {
		got, ok := msg.MessageAttributes[name]
		switch {
		case !ok:
			t.Errorf("message attribute %q missing", name)
		case aws.StringValue(got.DataType) != want.DataType:
			t.Errorf("message attribute %q: DataType %q, want %q", name, aws.StringValue(got.DataType), want.DataType)
		case want.BinaryValue != nil && string(got.BinaryValue) != string(want.BinaryValue):
			t.Errorf("message attribute %q: BinaryValue %x, want %x", name, got.BinaryValue, want.BinaryValue)
		case want.BinaryValue == nil && aws.StringValue(got.StringValue) != want.StringValue:
			t.Errorf("message attribute %q: StringValue %q, want %q", name, aws.StringValue(got.StringValue), want.StringValue)
		}
	}
	if got := aws.StringValue(msg.Attributes["ApproximateReceiveCount"]); got != "1" {
		t.Errorf("ApproximateReceiveCount %q, want \"1\"", got)
	}
	for _, name := range []string{"SentTimestamp", "ApproximateFirstReceiveTimestamp"} {
		if aws.StringValue(msg.Attributes[name]) == "" {
			t.Errorf("attribute %s missing: %v", name, aws.StringValueMap(msg.Attributes))
		}
	}

	if _, err := client.DeleteMessageWithContext(ctx, &sqs.DeleteMessageInput{
		QueueUrl:      aws.String(url),
		ReceiptHandle: msg.ReceiptHandle,
	}); err != nil {
		t.Fatalf("DeleteMessage: %v", err)
	}
	again, err := client.ReceiveMessageWithContext(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:        aws.String(url),
		WaitTimeSeconds: aws.Int64(1),
	})
	if err != nil {
		t.Fatalf("ReceiveMessage after DeleteMessage: %v", err)
	}
	if len(again.Messages) != 0 {
		t.Errorf("ReceiveMessage after DeleteMessage: %d messages, want none", len(again.Messages))
	}
	// An empty receive alone would also follow from the message being in
	// flight still (visibility timeout 30 s): gone means gone from the counts.
	counts, err := client.GetQueueAttributesWithContext(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: aws.StringSlice([]string{
			"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
		}),
	})
	if err != nil {
		t.Fatalf("GetQueueAttributes: %v", err)
	}
	for name, value := range counts.Attributes {
		if aws.StringValue(value) != "0" {
			t.Errorf("after DeleteMessage: %s %q, want \"0\"", name, aws.StringValue(value))
		}
	}
	if len(counts.Attributes) != 2 {
		t.Errorf("GetQueueAttributes: %v, want the 2 counts", aws.StringValueMap(counts.Attributes))
	}
}

func TestFifoBatchInOrder(t *testing.T) {
	ctx := testContext(t)
	client := newClient(t)
	url := createQueue(ctx, t, client, shmqtest.Unique("go-v1-ordered")+".fifo", map[string]string{
		"FifoQueue":                 "true",
		"ContentBasedDeduplication": "true",
	})

	bodies := []string{"first", "second", "third"}
	ids := []string{"m0", "m1", "m2"}
	entries := make([]*sqs.SendMessageBatchRequestEntry, len(bodies))
	for i, body := range bodies {
		entries[i] = &sqs.SendMessageBatchRequestEntry{
			Id:             aws.String(ids[i]),
			MessageBody:    aws.String(body),
			MessageGroupId: aws.String("group"),
		}
	}
	// The SDK compares each entry's MD5OfMessageBody with its body.
	out, err := client.SendMessageBatchWithContext(ctx, &sqs.SendMessageBatchInput{
		QueueUrl: aws.String(url),
		Entries:  entries,
	})
	if err != nil {
		t.Fatalf("SendMessageBatch: %v", err)
	}
	if len(out.Failed) != 0 || len(out.Successful) != len(bodies) {
		t.Fatalf("SendMessageBatch: %d successful, %d failed (%v), want %d and 0",
			len(out.Successful), len(out.Failed), out.Failed, len(bodies))
	}
	sequence := map[string]string{} // entry id -> SequenceNumber
	for _, e := range out.Successful {
		if aws.StringValue(e.MessageId) == "" || aws.StringValue(e.SequenceNumber) == "" {
			t.Errorf("SendMessageBatch entry %s: MessageId %q, SequenceNumber %q, want both",
				aws.StringValue(e.Id), aws.StringValue(e.MessageId), aws.StringValue(e.SequenceNumber))
		}
		sequence[aws.StringValue(e.Id)] = aws.StringValue(e.SequenceNumber)
	}

	// SQS may hand out a group's messages over more than one receive.
	var got []*sqs.Message
	for deadline := time.Now().Add(10 * time.Second); len(got) < len(bodies) && time.Now().Before(deadline); {
		batch, err := client.ReceiveMessageWithContext(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:            aws.String(url),
			AttributeNames:      aws.StringSlice([]string{"All"}),
			MaxNumberOfMessages: aws.Int64(10),
			WaitTimeSeconds:     aws.Int64(1),
		})
		if err != nil {
			t.Fatalf("ReceiveMessage: %v", err)
		}
		got = append(got, batch.Messages...)
	}
	if len(got) != len(bodies) {
		t.Fatalf("received %d messages, want %d", len(got), len(bodies))
	}
	previous := new(big.Int)
	for i, msg := range got {
		if body := aws.StringValue(msg.Body); body != bodies[i] {
			t.Errorf("message %d: Body %q, want %q", i, body, bodies[i])
		}
		if group := aws.StringValue(msg.Attributes["MessageGroupId"]); group != "group" {
			t.Errorf("message %d: MessageGroupId %q, want \"group\"", i, group)
		}
		// ContentBasedDeduplication: the id is the body's digest.
		dedup := aws.StringValue(msg.Attributes["MessageDeduplicationId"])
		if want := shmqtest.ContentDeduplicationID(bodies[i]); dedup != want {
			t.Errorf("message %d: MessageDeduplicationId %q, want %q", i, dedup, want)
		}
		seq := aws.StringValue(msg.Attributes["SequenceNumber"])
		if seq != sequence[ids[i]] {
			t.Errorf("message %d: SequenceNumber %q, want %q (SendMessageBatch's)", i, seq, sequence[ids[i]])
		}
		// Up to 128 bits, increasing within a group.
		n, ok := new(big.Int).SetString(seq, 10)
		if !ok || n.Cmp(previous) <= 0 {
			t.Errorf("message %d: SequenceNumber %q not above the previous one (%s)", i, seq, previous)
		} else {
			previous = n
		}
	}
}

func TestGetQueueUrlOfMissingQueue(t *testing.T) {
	client := newClient(t)
	_, err := client.GetQueueUrlWithContext(testContext(t), &sqs.GetQueueUrlInput{
		QueueName: aws.String(shmqtest.Unique("go-v1-missing")),
	})
	var failure awserr.RequestFailure
	if !errors.As(err, &failure) {
		t.Fatalf("GetQueueUrl of a missing queue: %v (%T), want an awserr.RequestFailure", err, err)
	}
	const code = "AWS.SimpleQueueService.NonExistentQueue" // sqs.ErrCodeQueueDoesNotExist
	if failure.Code() != code {
		t.Errorf("error code %q, want %q", failure.Code(), code)
	}
	if failure.StatusCode() != http.StatusBadRequest {
		t.Errorf("HTTP status %d, want 400", failure.StatusCode())
	}
	if failure.RequestID() == "" {
		t.Errorf("no RequestId in the error response")
	}
}

func TestReceiveMaxNumberOfMessagesOutOfRange(t *testing.T) {
	ctx := testContext(t)
	client := newClient(t)
	url := createQueue(ctx, t, client, shmqtest.Unique("go-v1-limits"), nil)

	// The SDK has no range for MaxNumberOfMessages: the service rejects it.
	_, err := client.ReceiveMessageWithContext(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(url),
		MaxNumberOfMessages: aws.Int64(11),
	})
	var failure awserr.RequestFailure
	if !errors.As(err, &failure) {
		t.Fatalf("ReceiveMessage MaxNumberOfMessages 11: %v (%T), want an awserr.RequestFailure", err, err)
	}
	if failure.Code() != "InvalidParameterValue" {
		t.Errorf("error code %q, want InvalidParameterValue", failure.Code())
	}
	const want = "Value 11 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided."
	if failure.Message() != want {
		t.Errorf("error message %q, want %q", failure.Message(), want)
	}
	if failure.StatusCode() != http.StatusBadRequest {
		t.Errorf("HTTP status %d, want 400", failure.StatusCode())
	}
}
