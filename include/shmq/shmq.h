/* The C API of libshmq: the shared-memory data path and queue administration
 * for C programs and for every language that calls C (Rust, Go, Python's
 * ctypes, ...). C99; no C++ types cross it and no exception escapes it.
 *
 * Every call that can fail returns an int: SHMQ_OK (0) or one of the codes
 * below, which are shmq::Errc's numbers (include/shmq/error.hpp), plus a few
 * of the C API's own past SHMQ_C_CODES. shmq_strerror() says what a code
 * means; shmq_errname() gives its stable name ("queue_does_not_exist").
 * Admin calls (those that take a shmq_client) also keep the daemon's
 * message: shmq_client_last_error() returns it for the calling thread.
 *
 * Handles are opaque. A shmq_client is a connection to one namespace's
 * daemon, or to an SQS endpoint over HTTP(S) (shmq_client_open_endpoint);
 * a shmq_queue is a queue mapped into this process (or, a remote client's,
 * a queue URL), and stays usable after the client that opened it is closed. A handle may be used from
 * several threads at once, except that closing it must come after every
 * other call on it has returned.
 *
 * Strings are NUL-terminated UTF-8 unless a length goes with them; bodies
 * and Binary attribute values are bytes with a length. NULL options mean
 * the defaults. Design notes: docs/c-api.md. */
#ifndef SHMQ_SHMQ_H
#define SHMQ_SHMQ_H

#include <stddef.h>
#include <stdint.h>

#include "shmq/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Errors ---- */

enum shmq_status {
  SHMQ_OK = 0,
  /* Sending */
  SHMQ_QUEUE_FULL = 1,                /* no memory left for the message (SQS OverLimit) */
  SHMQ_MESSAGE_TOO_LARGE = 2,         /* body and attributes over the queue's MaximumMessageSize */
  SHMQ_INVALID_MESSAGE_CONTENTS = 3,  /* a character SQS does not allow in a body */
  SHMQ_INVALID_MESSAGE_ATTRIBUTE = 4, /* bad name, type or value, or more than 10 */
  SHMQ_MISSING_PARAMETER = 5,         /* e.g. no group id on a FIFO queue */
  SHMQ_TOO_MANY_IN_FLIGHT = 6,        /* the queue's in-flight limit is reached */
  /* Receipt handles */
  SHMQ_INVALID_RECEIPT_HANDLE = 7, /* not a handle this queue issued */
  SHMQ_STALE_RECEIPT_HANDLE = 8,   /* the message was deleted or received again since */
  SHMQ_MESSAGE_NOT_IN_FLIGHT = 9,  /* change visibility of a message nobody holds */
  /* Queues */
  SHMQ_QUEUE_DOES_NOT_EXIST = 10,
  SHMQ_QUEUE_NAME_EXISTS = 11, /* create with other attributes than the existing queue's */
  SHMQ_INVALID_QUEUE_NAME = 12,
  SHMQ_INVALID_ATTRIBUTE_NAME = 13,
  SHMQ_INVALID_ATTRIBUTE_VALUE = 14,
  SHMQ_INVALID_PARAMETER_VALUE = 15, /* e.g. max_messages outside 1..10 */
  /* Batches */
  SHMQ_EMPTY_BATCH_REQUEST = 16,
  SHMQ_TOO_MANY_ENTRIES_IN_BATCH = 17,
  SHMQ_BATCH_ENTRY_IDS_NOT_DISTINCT = 18,
  SHMQ_INVALID_BATCH_ENTRY_ID = 19,
  SHMQ_BATCH_REQUEST_TOO_LONG = 20,
  /* Environment */
  SHMQ_DAEMON_UNAVAILABLE = 21, /* no shmqd serves the namespace (or it went away) */
  SHMQ_PERMISSION_DENIED = 22,
  SHMQ_INCOMPATIBLE_LAYOUT = 23,
  SHMQ_SEGMENT_CORRUPT = 24,
  /* Administration */
  SHMQ_RESOURCE_NOT_FOUND = 25,
  SHMQ_UNSUPPORTED_OPERATION = 26,
  SHMQ_OVER_LIMIT = 27,
  SHMQ_INTERNAL = 28,
  SHMQ_QUEUE_BUSY = 29,             /* the queue's lock stayed held past shmq_queue_set_lock_wait's bound */
  SHMQ_RECEIPT_HANDLE_EXPIRED = 30, /* FIFO: a delete after the visibility timeout ran out */
  SHMQ_THROTTLED = 31,              /* a remote endpoint throttled the request through every retry */

  /* The C API's own */
  SHMQ_C_CODES = 1000,
  SHMQ_INVALID_ARGUMENT = 1000, /* a NULL handle or pointer where one is needed */
  SHMQ_BUFFER_TOO_SMALL = 1001, /* the caller's buffer cannot hold the answer (see each call) */
  SHMQ_OUT_OF_MEMORY = 1002
};

/* What `code` means, in English; never NULL, static storage. */
SHMQ_API const char* shmq_strerror(int code);
/* The stable name of `code` ("queue_full", "invalid_argument"); never NULL. */
SHMQ_API const char* shmq_errname(int code);

/* The library's version, "MAJOR.MINOR.PATCH". */
SHMQ_API const char* shmq_version(void);

/* ---- Clients and queue administration ---- */

typedef struct shmq_client shmq_client;
typedef struct shmq_queue shmq_queue;

/* One queue attribute by its SQS name, its value as SQS writes it
 * ({"VisibilityTimeout", "45"}). */
typedef struct shmq_attribute {
  const char* name;
  const char* value;
} shmq_attribute;

/* A list the library allocated (shmq_get_queue_attributes,
 * shmq_list_queues); free it with shmq_list_free. */
typedef struct shmq_list {
  size_t count;
  shmq_attribute* items; /* for a list of names, each value is NULL */
  void* reserved;        /* the library's */
} shmq_list;

/* Connects to the daemon of namespace `ns` (NULL: "default"), whatever
 * SHMQ_ENDPOINT says. SHMQ_DAEMON_UNAVAILABLE if none runs. */
SHMQ_API int shmq_client_open(const char* ns, shmq_client** client);

/* With the environment variable SHMQ_ENDPOINT set and not empty, a client
 * of the SQS endpoint it names (credentials and region from the AWS
 * environment and files, as shmq_endpoint's NULL fields say); else the
 * daemon of namespace "default". This is the call that lets a program be
 * pointed at a remote endpoint without a change. */
SHMQ_API int shmq_client_open_default(shmq_client** client);

/* An SQS endpoint to use instead of shared memory: Amazon SQS, another
 * SQS-compatible service, or a shmqd bridge on another host
 * (docs/c-api.md, "Remote endpoints"). Strings are NUL-terminated; NULL is
 * the same as "". Fill one with shmq_endpoint_init first: a struct zeroed
 * with memset (or "= {0}") alone has verify_tls 0, which turns TLS
 * verification off. Then set the fields you need. */
typedef struct shmq_endpoint {
  const char* url; /* "https://sqs.us-east-1.amazonaws.com", "http://otherhost:9324"; required */
  /* NULL: the region in an Amazon host name, else AWS_REGION,
   * AWS_DEFAULT_REGION, the profile's region, else "us-east-1". */
  const char* region;
  const char* profile; /* NULL: AWS_PROFILE, else "default" (~/.aws/credentials and ~/.aws/config) */
  /* NULL: the credential chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,
   * then the shared files); with none anywhere, requests go unsigned. The
   * key id and the secret go together. */
  const char* access_key_id;
  const char* secret_access_key;
  const char* session_token;   /* temporary credentials only */
  const char* ca_file;         /* HTTPS: PEM file of the authorities to trust; NULL: AWS_CA_BUNDLE, else the system's */
  int verify_tls;              /* nonzero (the default): verify the server's certificate and name; 0 for tests only */
  unsigned connect_timeout_ms; /* TCP connect and TLS handshake; 0: the default, 3000 */
  unsigned request_timeout_ms; /* one attempt, not counting a long poll's wait; 0: the default, 30000 */
  /* Attempts per call, the first included; 0 (the default): AWS_MAX_ATTEMPTS,
   * else 3. Failed connections, 5xx answers and throttling are tried again
   * after a jittered delay of about retry_base_ms, doubled at each attempt
   * (five times as long when throttled), at most 20 s. */
  unsigned max_attempts;
  unsigned retry_base_ms; /* default 100; 0: no delay between attempts */
} shmq_endpoint;

/* Sets every field of *endpoint to its default: the strings NULL,
 * verify_tls 1, connect_timeout_ms 3000, request_timeout_ms 30000,
 * max_attempts 0, retry_base_ms 100. Does nothing for NULL. */
SHMQ_API void shmq_endpoint_init(shmq_endpoint* endpoint);

/* A client of this SQS endpoint. Nothing is sent yet: the first call
 * connects, and says whether the endpoint answers (SHMQ_DAEMON_UNAVAILABLE
 * after every attempt failed) and takes the credentials
 * (SHMQ_PERMISSION_DENIED). SHMQ_INVALID_PARAMETER_VALUE for a bad URL, a
 * CA file that cannot be read, a key id without a secret or a shared
 * credentials file that cannot be parsed; shmq_client_last_error() says
 * which. SHMQ_INVALID_ARGUMENT if endpoint, its url or client is NULL.
 *
 * The calls of a remote client and its queues are SQS actions, each
 * blocking for its HTTP answer, sends and deletes too; where they behave
 * otherwise, their comments say "Remote:". The error codes are the same;
 * SHMQ_THROTTLED is the endpoint's throttling through every attempt. */
SHMQ_API int shmq_client_open_endpoint(const shmq_endpoint* endpoint, shmq_client** client);

/* The endpoint's URL for a remote client; "" for a local one (and for
 * NULL). Valid while the handle is open. */
SHMQ_API const char* shmq_client_endpoint_url(const shmq_client* client);

SHMQ_API void shmq_client_close(shmq_client* client);
/* The daemon's or the library's message for the last failed call of this
 * thread on any client; "" if none. Valid until the thread's next call. */
SHMQ_API const char* shmq_client_last_error(void);

/* Creates a queue with these attributes (count 0: the defaults), or does
 * nothing if one exists with the same attributes. */
SHMQ_API int shmq_create_queue(shmq_client* client, const char* name, const shmq_attribute* attributes, size_t count);
SHMQ_API int shmq_delete_queue(shmq_client* client, const char* name);
/* The queues whose names start with `prefix` (NULL or "": all), as names. */
SHMQ_API int shmq_list_queues(shmq_client* client, const char* prefix, shmq_list** names);
/* Every attribute of the queue, as GetQueueAttributes with "All" answers. */
SHMQ_API int shmq_get_queue_attributes(shmq_client* client, const char* name, shmq_list** attributes);
SHMQ_API int shmq_set_queue_attributes(shmq_client* client, const char* name, const shmq_attribute* attributes,
                                       size_t count);
/* Removes every message; `purged` (may be NULL) gets how many. */
SHMQ_API int shmq_purge_queue(shmq_client* client, const char* name, uint64_t* purged);
SHMQ_API void shmq_list_free(shmq_list* list);

/* Maps the queue for sending and receiving. */
SHMQ_API int shmq_queue_open(shmq_client* client, const char* name, shmq_queue** queue);
SHMQ_API void shmq_queue_close(shmq_queue* queue);
/* The queue's name; valid while the handle is open. */
SHMQ_API const char* shmq_queue_name(const shmq_queue* queue);
/* Approximate counts, read without locking. Remote: a GetQueueAttributes
 * call (blocks); all zero if it fails. */
SHMQ_API void shmq_queue_counts(const shmq_queue* queue, uint64_t* visible, uint64_t* in_flight, uint64_t* delayed);
/* How long calls wait for the queue's lock before SHMQ_QUEUE_BUSY
 * (microseconds; 0: as long as it takes, the default). Remote: no effect. */
SHMQ_API void shmq_queue_set_lock_wait(shmq_queue* queue, uint64_t microseconds);

/* ---- Messages ---- */

/* A message attribute: data_type "String", "Number" or "Binary" (with an
 * optional custom suffix, "Number.int"); value is the string or the bytes. */
typedef struct shmq_message_attribute {
  const char* name;
  const char* data_type;
  const void* value;
  size_t value_len;
} shmq_message_attribute;

typedef struct shmq_send_options {
  const char* group_id;         /* FIFO: required; NULL: none */
  const char* deduplication_id; /* FIFO: required unless ContentBasedDeduplication; NULL: none */
  int32_t delay_seconds;        /* 0..900, standard queues; -1: the queue's DelaySeconds */
  const shmq_message_attribute* attributes;
  size_t attribute_count; /* at most 10 */
} shmq_send_options;

/* shmq_send_options with every field at its default. */
SHMQ_API shmq_send_options shmq_send_options_default(void);

#define SHMQ_MESSAGE_ID_SIZE 37      /* a UUID and its NUL */
#define SHMQ_SEQUENCE_NUMBER_SIZE 21 /* 20 digits and the NUL */
/* Room for any receipt handle and its NUL: a local one is 40 characters,
 * SQS's are at most 1024. */
#define SHMQ_RECEIPT_HANDLE_SIZE 1025

typedef struct shmq_send_result {
  char message_id[SHMQ_MESSAGE_ID_SIZE];
  char sequence_number[SHMQ_SEQUENCE_NUMBER_SIZE]; /* FIFO only; else "" */
  int duplicate;                                   /* FIFO: deduplicated; message_id is the original's */
} shmq_send_result;

/* Sends one message. Does not block (remote: blocks for the answer).
 * `options` and `result` may be NULL. Remote: a duplicate FIFO send is
 * answered as the original was, so `duplicate` stays 0. */
SHMQ_API int shmq_send(shmq_queue* queue, const void* body, size_t body_len, const shmq_send_options* options,
                       shmq_send_result* result);

typedef struct shmq_send_entry {
  const char* id; /* the caller's entry id, distinct in the batch; NULL: its index ("0", "1", ...) */
  const void* body;
  size_t body_len;
  shmq_send_options options;
} shmq_send_entry;

typedef struct shmq_batch_result {
  int status; /* SHMQ_OK, or why this entry failed */
  char message_id[SHMQ_MESSAGE_ID_SIZE];
  char sequence_number[SHMQ_SEQUENCE_NUMBER_SIZE];
  int duplicate;
} shmq_batch_result;

/* Sends up to 10 messages at once. A batch-level error (SHMQ_EMPTY_BATCH_REQUEST,
 * SHMQ_TOO_MANY_ENTRIES_IN_BATCH, ...) sends nothing; otherwise returns
 * SHMQ_OK and results[i] (count of them) says how entry i went. */
SHMQ_API int shmq_send_batch(shmq_queue* queue, const shmq_send_entry* entries, size_t count,
                             shmq_batch_result* results);

typedef struct shmq_receive_options {
  uint32_t max_messages;      /* 1..10 */
  int32_t visibility_timeout; /* seconds, 0..43200; -1: the queue's VisibilityTimeout */
  int32_t wait_time_ms;       /* 0..20000; -1: the queue's ReceiveMessageWaitTimeSeconds */
} shmq_receive_options;

/* shmq_receive_options with every field at its default (1 message). */
SHMQ_API shmq_receive_options shmq_receive_options_default(void);

/* A received message, in memory the library owns. */
typedef struct shmq_message {
  const void* body;
  size_t body_len;
  const char* message_id;
  const char* receipt_handle;
  const char* group_id;         /* "" if none */
  const char* deduplication_id; /* FIFO; else "" */
  const char* sequence_number;  /* FIFO; else "" */
  uint32_t receive_count;       /* ApproximateReceiveCount */
  uint64_t sent_timestamp_ms;   /* SentTimestamp, epoch ms */
  uint64_t first_receive_timestamp_ms;
  const shmq_message_attribute* attributes;
  size_t attribute_count;
} shmq_message;

typedef struct shmq_messages {
  size_t count;
  shmq_message* messages;
  void* reserved; /* the library's */
} shmq_messages;

/* Receives up to max_messages, waiting up to the wait time (the calling
 * thread sleeps; other threads run). An empty result is SHMQ_OK with count
 * 0. *messages is set on SHMQ_OK only; free it with shmq_messages_free. */
SHMQ_API int shmq_receive(shmq_queue* queue, const shmq_receive_options* options, shmq_messages** messages);
SHMQ_API void shmq_messages_free(shmq_messages* messages);

/* Receives at most one message into the caller's buffers; allocates
 * nothing once a thread has received messages as large. *received is 1 or
 * 0 (nothing within the wait time). body_len gets the body's length. When
 * the body is longer than body_cap, the message is received all the same
 * (receipt_handle names it; it is in flight) and SHMQ_BUFFER_TOO_SMALL is
 * returned with body_len the length needed: make it visible again with
 * shmq_change_visibility(..., 0), or delete it. receipt_handle needs
 * SHMQ_RECEIPT_HANDLE_SIZE bytes, message_id (may be NULL)
 * SHMQ_MESSAGE_ID_SIZE. Attributes are not returned here. Remote: an
 * endpoint whose handle does not fit (longer than SQS allows) gets the
 * message made visible again at once, and SHMQ_BUFFER_TOO_SMALL with
 * *received 0 and receipt_handle "": a cut handle would name nothing. */
SHMQ_API int shmq_receive_into(shmq_queue* queue, const shmq_receive_options* options, void* body, size_t body_cap,
                               size_t* body_len, char* receipt_handle, char* message_id, int* received);

/* Deletes the message the receipt handle names. Does not block (remote:
 * blocks for the answer). Remote: SQS takes a stale handle's delete as
 * done, so SHMQ_STALE_RECEIPT_HANDLE never comes back. */
SHMQ_API int shmq_delete(shmq_queue* queue, const char* receipt_handle);
/* Makes an in-flight message visible again after `seconds` (0..43200). */
SHMQ_API int shmq_change_visibility(shmq_queue* queue, const char* receipt_handle, uint32_t seconds);

/* Batch forms, up to 10 handles: a batch-level error does nothing; else
 * SHMQ_OK and statuses[i] for each handle. `seconds` is one timeout for
 * each handle. */
SHMQ_API int shmq_delete_batch(shmq_queue* queue, const char* const* receipt_handles, size_t count, int* statuses);
SHMQ_API int shmq_change_visibility_batch(shmq_queue* queue, const char* const* receipt_handles,
                                          const uint32_t* seconds, size_t count, int* statuses);

#ifdef __cplusplus
}
#endif

#endif /* SHMQ_SHMQ_H */
