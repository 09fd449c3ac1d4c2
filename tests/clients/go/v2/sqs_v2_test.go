// AWS SDK for Go v2 (Debian's golang-github-aws-aws-sdk-go-v2-dev, whose
// service/sqs is v1.19) against a real shmqd. For SQS this SDK speaks the
// Query protocol: form-encoded POSTs with Action=..., XML answers (the
// awsAwsquery_* serializers and deserializers of service/sqs; the JSON
// protocol came to SQS in later releases). The SDK itself checks
// MD5OfMessageBody of SendMessage, SendMessageBatch and ReceiveMessage
// (service/sqs/cust_checksum_validation.go) and fails the call on a
// mismatch; MD5OfMessageAttributes is checked here against
// shmqtest.MD5OfAttributes.
//
// The client is built from sqs.Options rather than config.LoadDefaultConfig:
// nothing is read from the environment or files, and the build stays at the
// sqs package and its dependencies.
package v2

import (
	"context"
	"errors"
	"math/big"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"../shmqtest"
)

var daemon *shmqtest.Daemon

func TestMain(m *testing.M) {
	os.Exit(shmqtest.Run(m, &daemon))
}

// newClient is an SQS client for the daemon: dummy static credentials, no
// retries that could hide an error, and the SDK's MD5 checks explicitly on.
func newClient() *sqs.Client {
	return sqs.New(sqs.Options{
		Region:                           shmqtest.Region,
		EndpointResolver:                 sqs.EndpointResolverFromURL(daemon.Endpoint),
		Credentials:                      credentials.NewStaticCredentialsProvider(shmqtest.AccessKey, shmqtest.SecretKey, ""),
		Retryer:                          aws.NopRetryer{},
		DisableMessageChecksumValidation: false,
		HTTPClient:                       awshttp.NewBuildableClient().WithTimeout(30 * time.Second),
	})
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// createQueue creates the queue and checks the URL the bridge hands out.
func createQueue(ctx context.Context, t *testing.T, client *sqs.Client, name string, attributes map[string]string) string {
	t.Helper()
	out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attributes})
	if err != nil {
		t.Fatalf("CreateQueue %s: %v", name, err)
	}
	if got, want := aws.ToString(out.QueueUrl), daemon.QueueURL(name); got != want {
		t.Fatalf("CreateQueue %s: QueueUrl %q, want %q", name, got, want)
	}
	return aws.ToString(out.QueueUrl)
}

// apiError unwraps err to the service's error and the HTTP status it came
// with, failing the test when err is something else.
func apiError(t *testing.T, what string, err error) (smithy.APIError, int) {
	t.Helper()
	var api smithy.APIError
	var response *awshttp.ResponseError
	if !errors.As(err, &api) || !errors.As(err, &response) {
		t.Fatalf("%s: %v (%T), want a service error", what, err, err)
	}
	if response.ServiceRequestID() == "" {
		t.Errorf("%s: no RequestId in the error response", what)
	}
	return api, response.HTTPStatusCode()
}

func TestStandardQueueSendReceiveDelete(t *testing.T) {
	ctx := testContext(t)
	client := newClient()
	url := createQueue(ctx, t, client, shmqtest.Unique("go-v2-standard"), nil)

	// Non-ASCII and XML metacharacters: the body goes form-encoded out and
	// comes back inside XML.
	body := "héllo <shmq> & \"go\" 🐟"
	sent := map[string]shmqtest.Attribute{
		"colour": {DataType: "String", StringValue: "blue"},
		"count":  {DataType: "Number", StringValue: "42.5"},
		"blob":   {DataType: "Binary", BinaryValue: []byte{0x00, 0x01, 0xfe, 0xff}},
	}
	attributes := map[string]types.MessageAttributeValue{}
	for name, a := range sent {
		v := types.MessageAttributeValue{DataType: aws.String(a.DataType)}
		if a.BinaryValue != nil {
			v.BinaryValue = a.BinaryValue
		} else {
			v.StringValue = aws.String(a.StringValue)
		}
		attributes[name] = v
	}

	// A wrong MD5OfMessageBody would have failed the call.
	out, err := client.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:          aws.String(url),
		MessageBody:       aws.String(body),
		MessageAttributes: attributes,
	})
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	if aws.ToString(out.MessageId) == "" {
		t.Errorf("SendMessage: no MessageId")
	}
	if got, want := aws.ToString(out.MD5OfMessageBody), shmqtest.MD5OfBody(body); got != want {
		t.Errorf("SendMessage: MD5OfMessageBody %q, want %q", got, want)
	}
	if got, want := aws.ToString(out.MD5OfMessageAttributes), shmqtest.MD5OfAttributes(sent); got != want {
		t.Errorf("SendMessage: MD5OfMessageAttributes %q, want %q", got, want)
	}

	received, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:              aws.String(url),
		AttributeNames:        []types.QueueAttributeName{types.QueueAttributeNameAll},
		MessageAttributeNames: []string{"All"},
		WaitTimeSeconds:       5,
	})
	if err != nil {
		t.Fatalf("ReceiveMessage: %v", err)
	}
	if len(received.Messages) != 1 {
		t.Fatalf("ReceiveMessage: %d messages, want 1", len(received.Messages))
	}
	msg := received.Messages[0]
	if got, want := aws.ToString(msg.MessageId), aws.ToString(out.MessageId); got != want {
		t.Errorf("MessageId %q, want %q (SendMessage's)", got, want)
	}
	if got := aws.ToString(msg.Body); got != body {
		t.Errorf("Body %q, want %q", got, body)
	}
	if got, want := aws.ToString(msg.MD5OfMessageAttributes), shmqtest.MD5OfAttributes(sent); got != want {
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
		case aws.ToString(got.DataType) != want.DataType:
			t.Errorf("message attribute %q: DataType %q, want %q", name, aws.ToString(got.DataType), want.DataType)
		case want.BinaryValue != nil && string(got.BinaryValue) != string(want.BinaryValue):
			t.Errorf("message attribute %q: BinaryValue %x, want %x", name, got.BinaryValue, want.BinaryValue)
		case want.BinaryValue == nil && aws.ToString(got.StringValue) != want.StringValue:
			t.Errorf("message attribute %q: StringValue %q, want %q", name, aws.ToString(got.StringValue), want.StringValue)
		}
	}
	if got := msg.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)]; got != "1" {
		t.Errorf("ApproximateReceiveCount %q, want \"1\"", got)
	}
	for _, name := range []types.MessageSystemAttributeName{
		types.MessageSystemAttributeNameSentTimestamp,
		types.MessageSystemAttributeNameApproximateFirstReceiveTimestamp,
	} {
		if msg.Attributes[string(name)] == "" {
			t.Errorf("attribute %s missing: %v", name, msg.Attributes)
		}
	}

	if _, err := client.DeleteMessage(ctx, &sqs.DeleteMessageInput{
		QueueUrl:      aws.String(url),
		ReceiptHandle: msg.ReceiptHandle,
	}); err != nil {
		t.Fatalf("DeleteMessage: %v", err)
	}
	again, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:        aws.String(url),
		WaitTimeSeconds: 1,
	})
	if err != nil {
		t.Fatalf("ReceiveMessage after DeleteMessage: %v", err)
	}
	if len(again.Messages) != 0 {
		t.Errorf("ReceiveMessage after DeleteMessage: %d messages, want none", len(again.Messages))
	}
	// An empty receive alone would also follow from the message being in
	// flight still (visibility timeout 30 s): gone means gone from the counts.
	counts, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		t.Fatalf("GetQueueAttributes: %v", err)
	}
	for name, value := range counts.Attributes {
		if value != "0" {
			t.Errorf("after DeleteMessage: %s %q, want \"0\"", name, value)
		}
	}
	if len(counts.Attributes) != 2 {
		t.Errorf("GetQueueAttributes: %v, want the 2 counts", counts.Attributes)
	}
}

func TestFifoBatchInOrder(t *testing.T) {
	ctx := testContext(t)
	client := newClient()
	url := createQueue(ctx, t, client, shmqtest.Unique("go-v2-ordered")+".fifo", map[string]string{
		string(types.QueueAttributeNameFifoQueue):                 "true",
		string(types.QueueAttributeNameContentBasedDeduplication): "true",
	})

	bodies := []string{"first", "second", "third"}
	ids := []string{"m0", "m1", "m2"}
	entries := make([]types.SendMessageBatchRequestEntry, len(bodies))
	for i, body := range bodies {
		entries[i] = types.SendMessageBatchRequestEntry{
			Id:             aws.String(ids[i]),
			MessageBody:    aws.String(body),
			MessageGroupId: aws.String("group"),
		}
	}
	// The SDK compares each entry's MD5OfMessageBody with its body.
	out, err := client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{
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
		if aws.ToString(e.MessageId) == "" || aws.ToString(e.SequenceNumber) == "" {
			t.Errorf("SendMessageBatch entry %s: MessageId %q, SequenceNumber %q, want both",
				aws.ToString(e.Id), aws.ToString(e.MessageId), aws.ToString(e.SequenceNumber))
		}
		sequence[aws.ToString(e.Id)] = aws.ToString(e.SequenceNumber)
	}

	// SQS may hand out a group's messages over more than one receive.
	var got []types.Message
	for deadline := time.Now().Add(10 * time.Second); len(got) < len(bodies) && time.Now().Before(deadline); {
		batch, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:            aws.String(url),
			AttributeNames:      []types.QueueAttributeName{types.QueueAttributeNameAll},
			MaxNumberOfMessages: 10,
			WaitTimeSeconds:     1,
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
		if body := aws.ToString(msg.Body); body != bodies[i] {
			t.Errorf("message %d: Body %q, want %q", i, body, bodies[i])
		}
		if group := msg.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)]; group != "group" {
			t.Errorf("message %d: MessageGroupId %q, want \"group\"", i, group)
		}
		// ContentBasedDeduplication: the id is the body's digest.
		dedup := msg.Attributes[string(types.MessageSystemAttributeNameMessageDeduplicationId)]
		if want := shmqtest.ContentDeduplicationID(bodies[i]); dedup != want {
			t.Errorf("message %d: MessageDeduplicationId %q, want %q", i, dedup, want)
		}
		seq := msg.Attributes[string(types.MessageSystemAttributeNameSequenceNumber)]
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
	client := newClient()
	_, err := client.GetQueueUrl(testContext(t), &sqs.GetQueueUrlInput{
		QueueName: aws.String(shmqtest.Unique("go-v2-missing")),
	})
	// The SDK maps the Query error code to the modelled error type.
	var missing *types.QueueDoesNotExist
	if !errors.As(err, &missing) {
		t.Errorf("GetQueueUrl of a missing queue: %v (%T), want *types.QueueDoesNotExist", err, err)
	}
	api, status := apiError(t, "GetQueueUrl of a missing queue", err)
	if got, want := api.ErrorCode(), "AWS.SimpleQueueService.NonExistentQueue"; got != want {
		t.Errorf("error code %q, want %q", got, want)
	}
	if status != http.StatusBadRequest {
		t.Errorf("HTTP status %d, want 400", status)
	}
}

func TestReceiveMaxNumberOfMessagesOutOfRange(t *testing.T) {
	ctx := testContext(t)
	client := newClient()
	url := createQueue(ctx, t, client, shmqtest.Unique("go-v2-limits"), nil)

	// The SDK has no range for MaxNumberOfMessages: the service rejects it.
	_, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(url),
		MaxNumberOfMessages: 11,
	})
	api, status := apiError(t, "ReceiveMessage MaxNumberOfMessages 11", err)
	if api.ErrorCode() != "InvalidParameterValue" {
		t.Errorf("error code %q, want InvalidParameterValue", api.ErrorCode())
	}
	const want = "Value 11 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided."
	if api.ErrorMessage() != want {
		t.Errorf("error message %q, want %q", api.ErrorMessage(), want)
	}
	if status != http.StatusBadRequest {
		t.Errorf("HTTP status %d, want 400", status)
	}
}
