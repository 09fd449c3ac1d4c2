/* The C API (shmq.h) as a C program uses it: compiled as C99, linked
 * against libshmq.so, against a real shmqd in a namespace of its own.
 * cmocka runs the tests; each group gets a fresh daemon. The remote group's
 * daemon also serves its SQS bridge on 127.0.0.1, checking signatures, for
 * clients of shmq_client_open_endpoint. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "shmq/shmq.h"

static char ns[64];
static pid_t daemon_pid;
static shmq_client* client;
/* The remote group's bridge: its URL, and the file shmqd writes its port to. */
static char bridge_url[64];
static char port_file[128];
static const char kAccessKey[] = "AKIDCAPITEST";
static const char kSecretKey[] = "capi-secret-key";

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

/* Starts shmqd (SHMQD, else the path the build gave) and connects; with
 * `bridge`, its SQS bridge listens on a free port of 127.0.0.1 and checks
 * signatures made with kAccessKey and kSecretKey. */
static int start(int bridge) {
  static int round = 0;
  snprintf(ns, sizeof ns, "capi%dx%d", (int)getpid(), round++);
  snprintf(port_file, sizeof port_file, "/tmp/shmq-%s.port", ns);
  unlink(port_file);
  char auth[96];
  snprintf(auth, sizeof auth, "%s:%s", kAccessKey, kSecretKey);
  const char* shmqd = getenv("SHMQD") ? getenv("SHMQD") : SHMQ_TEST_SHMQD;
  daemon_pid = fork();
  if (daemon_pid == 0) {
    if (bridge) {
      execl(shmqd, shmqd, "--namespace", ns, "--bridge-listen", "127.0.0.1:0", "--bridge-port-file", port_file,
            "--auth", auth, "--log-level", "warn", (char*)NULL);
    } else {
      execl(shmqd, shmqd, "--namespace", ns, "--bridge-listen", "off", "--log-level", "warn", (char*)NULL);
    }
    _exit(127);
  }
  int port = 0;
  for (int i = 0; i < 500 && bridge && port == 0; ++i) {
    FILE* f = fopen(port_file, "r");
    if (f) {
      if (fscanf(f, "%d", &port) != 1) port = 0;
      fclose(f);
    }
    if (port == 0) sleep_ms(20);
  }
  if (bridge && port == 0) {
    fprintf(stderr, "shmqd did not write its bridge port within 10 s\n");
    return -1;
  }
  snprintf(bridge_url, sizeof bridge_url, "http://127.0.0.1:%d", port);
  for (int i = 0; i < 500; ++i) {
    if (shmq_client_open(ns, &client) == SHMQ_OK) return 0;
    int status;
    if (waitpid(daemon_pid, &status, WNOHANG) == daemon_pid) {
      fprintf(stderr, "shmqd (%s) exited at start\n", shmqd);
      return -1;
    }
    sleep_ms(20);
  }
  fprintf(stderr, "shmqd did not answer within 10 s\n");
  return -1;
}

static int start_daemon(void** state) {
  (void)state;
  return start(0);
}

static int start_daemon_with_bridge(void** state) {
  (void)state;
  return start(1);
}

static int stop_daemon(void** state) {
  (void)state;
  shmq_client_close(client);
  client = NULL;
  kill(daemon_pid, SIGTERM);
  waitpid(daemon_pid, NULL, 0);
  unlink(port_file);
  char prefix[96];
  snprintf(prefix, sizeof prefix, "shmq.%s.", ns);
  DIR* dir = opendir("/dev/shm");
  if (dir) {
    struct dirent* e;
    while ((e = readdir(dir)) != NULL) {
      if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
        char path[512];
        snprintf(path, sizeof path, "/dev/shm/%s", e->d_name);
        unlink(path);
      }
    }
    closedir(dir);
  }
  return 0;
}

static shmq_queue* make_queue(const char* name, const shmq_attribute* attributes, size_t count) {
  assert_int_equal(shmq_create_queue(client, name, attributes, count), SHMQ_OK);
  shmq_queue* q = NULL;
  assert_int_equal(shmq_queue_open(client, name, &q), SHMQ_OK);
  assert_non_null(q);
  return q;
}

static const char* attribute(const char* queue, const char* name) {
  static char value[256];
  shmq_list* all = NULL;
  assert_int_equal(shmq_get_queue_attributes(client, queue, &all), SHMQ_OK);
  value[0] = '\0';
  for (size_t i = 0; i < all->count; ++i) {
    if (strcmp(all->items[i].name, name) == 0) snprintf(value, sizeof value, "%s", all->items[i].value);
  }
  shmq_list_free(all);
  return value;
}

static uint64_t visible_of(const shmq_queue* q) {
  uint64_t visible = 0;
  shmq_queue_counts(q, &visible, NULL, NULL);
  return visible;
}

/* ---- errors ---- */

static void every_code_has_a_name_and_a_message(void** state) {
  (void)state;
  assert_string_equal(shmq_errname(SHMQ_OK), "ok");
  /* Each enum value is shmq::Errc's of the same name: the numbers cannot drift apart. */
  static const struct {
    int code;
    const char* name;
  } codes[] = {
      {SHMQ_QUEUE_FULL, "queue_full"},
      {SHMQ_MESSAGE_TOO_LARGE, "message_too_large"},
      {SHMQ_INVALID_MESSAGE_CONTENTS, "invalid_message_contents"},
      {SHMQ_INVALID_MESSAGE_ATTRIBUTE, "invalid_message_attribute"},
      {SHMQ_MISSING_PARAMETER, "missing_parameter"},
      {SHMQ_TOO_MANY_IN_FLIGHT, "too_many_in_flight"},
      {SHMQ_INVALID_RECEIPT_HANDLE, "invalid_receipt_handle"},
      {SHMQ_STALE_RECEIPT_HANDLE, "stale_receipt_handle"},
      {SHMQ_MESSAGE_NOT_IN_FLIGHT, "message_not_in_flight"},
      {SHMQ_QUEUE_DOES_NOT_EXIST, "queue_does_not_exist"},
      {SHMQ_QUEUE_NAME_EXISTS, "queue_name_exists"},
      {SHMQ_INVALID_QUEUE_NAME, "invalid_queue_name"},
      {SHMQ_INVALID_ATTRIBUTE_NAME, "invalid_attribute_name"},
      {SHMQ_INVALID_ATTRIBUTE_VALUE, "invalid_attribute_value"},
      {SHMQ_INVALID_PARAMETER_VALUE, "invalid_parameter_value"},
      {SHMQ_EMPTY_BATCH_REQUEST, "empty_batch_request"},
      {SHMQ_TOO_MANY_ENTRIES_IN_BATCH, "too_many_entries_in_batch"},
      {SHMQ_BATCH_ENTRY_IDS_NOT_DISTINCT, "batch_entry_ids_not_distinct"},
      {SHMQ_INVALID_BATCH_ENTRY_ID, "invalid_batch_entry_id"},
      {SHMQ_BATCH_REQUEST_TOO_LONG, "batch_request_too_long"},
      {SHMQ_DAEMON_UNAVAILABLE, "daemon_unavailable"},
      {SHMQ_PERMISSION_DENIED, "permission_denied"},
      {SHMQ_INCOMPATIBLE_LAYOUT, "incompatible_layout"},
      {SHMQ_SEGMENT_CORRUPT, "segment_corrupt"},
      {SHMQ_RESOURCE_NOT_FOUND, "resource_not_found"},
      {SHMQ_UNSUPPORTED_OPERATION, "unsupported_operation"},
      {SHMQ_OVER_LIMIT, "over_limit"},
      {SHMQ_INTERNAL, "internal"},
      {SHMQ_QUEUE_BUSY, "queue_busy"},
      {SHMQ_RECEIPT_HANDLE_EXPIRED, "receipt_handle_expired"},
      {SHMQ_THROTTLED, "throttled"},
  };
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; ++i)
    assert_string_equal(shmq_errname(codes[i].code), codes[i].name);
  assert_int_equal(sizeof codes / sizeof codes[0], 31);
  assert_string_equal(shmq_errname(SHMQ_BUFFER_TOO_SMALL), "buffer_too_small");
  /* The code after the last is not one: the table above is the whole list. */
  assert_string_equal(shmq_errname(SHMQ_THROTTLED + 1), "unknown");
  for (int code = SHMQ_QUEUE_FULL; code <= SHMQ_THROTTLED; ++code) {
    assert_true(strlen(shmq_strerror(code)) > 0);
    assert_string_not_equal(shmq_errname(code), "unknown");
  }
  assert_string_equal(shmq_errname(999), "unknown");
  assert_string_equal(shmq_errname(-1), "unknown");
  assert_non_null(strstr(shmq_strerror(SHMQ_INVALID_ARGUMENT), "NULL"));
  assert_string_equal(shmq_version(), SHMQ_TEST_VERSION);
}

static void no_daemon_is_daemon_unavailable(void** state) {
  (void)state;
  shmq_client* none = (shmq_client*)0x1;
  assert_int_equal(shmq_client_open("capi-nobody-serves-this", &none), SHMQ_DAEMON_UNAVAILABLE);
  assert_null(none);
  assert_true(strlen(shmq_client_last_error()) > 0);
  assert_int_equal(shmq_client_open(NULL, NULL), SHMQ_INVALID_ARGUMENT);
}

static void an_endpoint_starts_at_the_defaults_and_bad_ones_are_refused(void** state) {
  (void)state;
  shmq_endpoint e;
  memset(&e, 0x5a, sizeof e); /* whatever was there, init sets every field */
  shmq_endpoint_init(&e);
  assert_null(e.url);
  assert_null(e.region);
  assert_null(e.profile);
  assert_null(e.access_key_id);
  assert_null(e.secret_access_key);
  assert_null(e.session_token);
  assert_null(e.ca_file);
  assert_int_equal(e.verify_tls, 1);
  assert_int_equal(e.connect_timeout_ms, 3000);
  assert_int_equal(e.request_timeout_ms, 30000);
  assert_int_equal(e.max_attempts, 0);
  assert_int_equal(e.retry_base_ms, 100);
  shmq_endpoint_init(NULL);

  shmq_client* c = (shmq_client*)0x1;
  assert_int_equal(shmq_client_open_endpoint(&e, &c), SHMQ_INVALID_ARGUMENT); /* no url */
  assert_null(c);
  assert_int_equal(shmq_client_open_endpoint(NULL, &c), SHMQ_INVALID_ARGUMENT);
  e.url = "http://127.0.0.1:1";
  assert_int_equal(shmq_client_open_endpoint(&e, NULL), SHMQ_INVALID_ARGUMENT);
  assert_int_equal(shmq_client_open_default(NULL), SHMQ_INVALID_ARGUMENT);

  e.url = "ftp://127.0.0.1/";
  assert_int_equal(shmq_client_open_endpoint(&e, &c), SHMQ_INVALID_PARAMETER_VALUE);
  assert_null(c);
  assert_non_null(strstr(shmq_client_last_error(), "ftp"));
  e.url = "https://127.0.0.1:1";
  e.ca_file = "/nonexistent/shmq-test-ca.pem";
  assert_int_equal(shmq_client_open_endpoint(&e, &c), SHMQ_INVALID_PARAMETER_VALUE);
  assert_non_null(strstr(shmq_client_last_error(), "/nonexistent/shmq-test-ca.pem"));
  e.ca_file = NULL;
  e.access_key_id = kAccessKey; /* and no secret */
  assert_int_equal(shmq_client_open_endpoint(&e, &c), SHMQ_INVALID_PARAMETER_VALUE);
  assert_null(c);
}

static void an_endpoint_nobody_serves_is_daemon_unavailable(void** state) {
  (void)state;
  shmq_endpoint e;
  shmq_endpoint_init(&e);
  e.url = "http://127.0.0.1:1"; /* nothing listens on port 1 */
  e.access_key_id = kAccessKey;
  e.secret_access_key = kSecretKey;
  e.max_attempts = 2;
  e.retry_base_ms = 1;
  shmq_client* c = NULL;
  /* Opening sends nothing: it succeeds, and the first call finds out. */
  assert_int_equal(shmq_client_open_endpoint(&e, &c), SHMQ_OK);
  assert_non_null(c);
  assert_string_equal(shmq_client_endpoint_url(c), "http://127.0.0.1:1");
  shmq_list* names = NULL;
  assert_int_equal(shmq_list_queues(c, NULL, &names), SHMQ_DAEMON_UNAVAILABLE);
  assert_null(names);
  assert_non_null(strstr(shmq_client_last_error(), "127.0.0.1:1"));
  shmq_queue* q = NULL;
  assert_int_equal(shmq_queue_open(c, "anything", &q), SHMQ_DAEMON_UNAVAILABLE);
  assert_null(q);
  shmq_client_close(c);
}

/* ---- administration ---- */

static void queues_are_created_listed_changed_and_deleted(void** state) {
  (void)state;
  const shmq_attribute attrs[] = {{"VisibilityTimeout", "45"}, {"DelaySeconds", "0"}};
  assert_int_equal(shmq_create_queue(client, "admin-jobs", attrs, 2), SHMQ_OK);
  assert_int_equal(shmq_create_queue(client, "admin-jobs", attrs, 2), SHMQ_OK); /* idempotent */
  assert_string_equal(attribute("admin-jobs", "VisibilityTimeout"), "45");

  const shmq_attribute other[] = {{"VisibilityTimeout", "46"}};
  assert_int_equal(shmq_create_queue(client, "admin-jobs", other, 1), SHMQ_QUEUE_NAME_EXISTS);
  assert_int_equal(shmq_set_queue_attributes(client, "admin-jobs", other, 1), SHMQ_OK);
  assert_string_equal(attribute("admin-jobs", "VisibilityTimeout"), "46");

  const shmq_attribute bad[] = {{"VisibilityTimeout", "43201"}};
  assert_int_equal(shmq_set_queue_attributes(client, "admin-jobs", bad, 1), SHMQ_INVALID_ATTRIBUTE_VALUE);
  assert_non_null(strstr(shmq_client_last_error(), "VisibilityTimeout"));
  const shmq_attribute unknown[] = {{"Colour", "blue"}};
  assert_int_equal(shmq_create_queue(client, "admin-other", unknown, 1), SHMQ_INVALID_ATTRIBUTE_NAME);
  assert_int_equal(shmq_create_queue(client, "no spaces", NULL, 0), SHMQ_INVALID_QUEUE_NAME);

  shmq_list* names = NULL;
  assert_int_equal(shmq_list_queues(client, "admin-", &names), SHMQ_OK);
  assert_int_equal(names->count, 1);
  assert_string_equal(names->items[0].name, "admin-jobs");
  assert_null(names->items[0].value);
  shmq_list_free(names);

  assert_int_equal(shmq_delete_queue(client, "admin-jobs"), SHMQ_OK);
  shmq_queue* q = NULL;
  assert_int_equal(shmq_queue_open(client, "admin-jobs", &q), SHMQ_QUEUE_DOES_NOT_EXIST);
  assert_null(q);
  assert_int_equal(shmq_list_queues(client, "admin-", &names), SHMQ_OK);
  assert_int_equal(names->count, 0);
  shmq_list_free(names);
}

static void purge_says_how_many(void** state) {
  (void)state;
  shmq_queue* q = make_queue("purged", NULL, 0);
  for (int i = 0; i < 3; ++i) assert_int_equal(shmq_send(q, "x", 1, NULL, NULL), SHMQ_OK);
  uint64_t purged = 0;
  assert_int_equal(shmq_purge_queue(client, "purged", &purged), SHMQ_OK);
  assert_int_equal(purged, 3);
  assert_int_equal(visible_of(q), 0);
  shmq_queue_close(q);
}

/* ---- messages ---- */

/* The attributes both round-trip tests send: "raw" (Binary, these bytes),
 * "size" (Number.int 1024), and one more. */
static void expect_raw_and_size_attributes(const shmq_message* m, const unsigned char* bytes, size_t n) {
  assert_int_equal(m->attribute_count, 3);
  int seen = 0;
  for (size_t i = 0; i < m->attribute_count; ++i) {
    const shmq_message_attribute* a = &m->attributes[i];
    if (strcmp(a->name, "raw") == 0) {
      assert_string_equal(a->data_type, "Binary");
      assert_int_equal(a->value_len, n);
      assert_memory_equal(a->value, bytes, n);
      ++seen;
    } else if (strcmp(a->name, "size") == 0) {
      assert_string_equal(a->data_type, "Number.int");
      assert_memory_equal(a->value, "1024", 4);
      ++seen;
    }
  }
  assert_int_equal(seen, 2);
}

static void a_message_round_trips_with_its_attributes(void** state) {
  (void)state;
  shmq_queue* q = make_queue("round-trip", NULL, 0);
  assert_string_equal(shmq_queue_name(q), "round-trip");
  const unsigned char bytes[] = {0x00, 0xff, 0x10};
  const shmq_message_attribute attrs[] = {
      {"kind", "String", "image", 5}, {"size", "Number.int", "1024", 4}, {"raw", "Binary", bytes, sizeof bytes}};
  shmq_send_options options = shmq_send_options_default();
  options.attributes = attrs;
  options.attribute_count = 3;
  shmq_send_result sent;
  /* A NUL is not among the characters SQS allows in a body. */
  assert_int_equal(shmq_send(q, "a\0b", 3, &options, &sent), SHMQ_INVALID_MESSAGE_CONTENTS);
  const char body[] = "hello from C, \xc3\xa9t\xc3\xa9"; /* UTF-8 */
  assert_int_equal(shmq_send(q, body, sizeof body - 1, &options, &sent), SHMQ_OK);
  assert_int_equal(strlen(sent.message_id), 36);
  assert_string_equal(sent.sequence_number, "");

  shmq_receive_options r = shmq_receive_options_default();
  r.max_messages = 10;
  r.wait_time_ms = 0;
  shmq_messages* got = NULL;
  assert_int_equal(shmq_receive(q, &r, &got), SHMQ_OK);
  assert_int_equal(got->count, 1);
  const shmq_message* m = &got->messages[0];
  assert_int_equal(m->body_len, sizeof body - 1);
  assert_memory_equal(m->body, body, sizeof body - 1);
  assert_string_equal(m->message_id, sent.message_id);
  assert_int_equal(m->receive_count, 1);
  assert_true(m->sent_timestamp_ms > 1700000000000ull);
  expect_raw_and_size_attributes(m, bytes, sizeof bytes);
  uint64_t in_flight = 0;
  shmq_queue_counts(q, NULL, &in_flight, NULL);
  assert_int_equal(in_flight, 1);
  assert_int_equal(shmq_delete(q, m->receipt_handle), SHMQ_OK);
  assert_int_equal(shmq_delete(q, m->receipt_handle), SHMQ_STALE_RECEIPT_HANDLE);
  shmq_messages_free(got);

  assert_int_equal(shmq_delete(q, "not-a-handle"), SHMQ_INVALID_RECEIPT_HANDLE);
  assert_int_equal(shmq_receive(q, &r, &got), SHMQ_OK);
  assert_int_equal(got->count, 0);
  shmq_messages_free(got);
  shmq_queue_close(q);
}

static void bad_arguments_are_refused_and_nothing_is_sent(void** state) {
  (void)state;
  shmq_queue* q = make_queue("refusals", NULL, 0);
  assert_int_equal(shmq_send(NULL, "x", 1, NULL, NULL), SHMQ_INVALID_ARGUMENT);
  assert_int_equal(shmq_send(q, NULL, 5, NULL, NULL), SHMQ_INVALID_ARGUMENT);
  assert_int_equal(shmq_send(q, "", 0, NULL, NULL), SHMQ_MISSING_PARAMETER); /* SQS: at least one character */
  shmq_send_options o = shmq_send_options_default();
  o.delay_seconds = 901;
  assert_int_equal(shmq_send(q, "x", 1, &o, NULL), SHMQ_INVALID_PARAMETER_VALUE);
  o = shmq_send_options_default();
  const shmq_message_attribute twice[] = {{"a", "String", "1", 1}, {"a", "String", "2", 1}};
  o.attributes = twice;
  o.attribute_count = 2;
  assert_int_equal(shmq_send(q, "x", 1, &o, NULL), SHMQ_INVALID_MESSAGE_ATTRIBUTE);
  shmq_receive_options r = shmq_receive_options_default();
  r.max_messages = 11;
  shmq_messages* got = NULL;
  assert_int_equal(shmq_receive(q, &r, &got), SHMQ_INVALID_PARAMETER_VALUE);
  assert_null(got);
  r.max_messages = 1;
  r.wait_time_ms = 20001;
  assert_int_equal(shmq_receive(q, &r, &got), SHMQ_INVALID_PARAMETER_VALUE);
  assert_int_equal(visible_of(q), 0);
  shmq_queue_close(q);
}

static void receive_into_fills_the_callers_buffers(void** state) {
  (void)state;
  shmq_queue* q = make_queue("into", NULL, 0);
  char big[300];
  memset(big, 'b', sizeof big);
  assert_int_equal(shmq_send(q, big, sizeof big, NULL, NULL), SHMQ_OK);

  shmq_receive_options r = shmq_receive_options_default();
  r.wait_time_ms = 0;
  char body[100];
  char handle[SHMQ_RECEIPT_HANDLE_SIZE];
  char id[SHMQ_MESSAGE_ID_SIZE];
  size_t len = 0;
  int received = 0;
  /* Too small: received all the same, and the length it needs is said. */
  assert_int_equal(shmq_receive_into(q, &r, body, sizeof body, &len, handle, id, &received), SHMQ_BUFFER_TOO_SMALL);
  assert_int_equal(received, 1);
  assert_int_equal(len, sizeof big);
  assert_int_equal(shmq_change_visibility(q, handle, 0), SHMQ_OK);

  char enough[400];
  assert_int_equal(shmq_receive_into(q, &r, enough, sizeof enough, &len, handle, id, &received), SHMQ_OK);
  assert_int_equal(received, 1);
  assert_int_equal(len, sizeof big);
  assert_memory_equal(enough, big, sizeof big);
  assert_int_equal(strlen(id), 36);
  assert_int_equal(shmq_delete(q, handle), SHMQ_OK);

  assert_int_equal(shmq_receive_into(q, &r, enough, sizeof enough, &len, handle, NULL, &received), SHMQ_OK);
  assert_int_equal(received, 0);
  shmq_queue_close(q);
}

static void batches_report_each_entry(void** state) {
  (void)state;
  shmq_queue* q = make_queue("batches", NULL, 0);
  shmq_send_entry entries[3];
  memset(entries, 0, sizeof entries);
  const char* bodies[] = {"one", "two", "three"};
  for (int i = 0; i < 3; ++i) {
    entries[i].body = bodies[i];
    entries[i].body_len = strlen(bodies[i]);
    entries[i].options = shmq_send_options_default();
  }
  entries[1].options.delay_seconds = 5000; /* out of range: this entry alone fails */
  shmq_batch_result results[3];
  assert_int_equal(shmq_send_batch(q, entries, 3, results), SHMQ_OK);
  assert_int_equal(results[0].status, SHMQ_OK);
  assert_int_equal(results[1].status, SHMQ_INVALID_PARAMETER_VALUE);
  assert_int_equal(results[2].status, SHMQ_OK);
  assert_int_equal(strlen(results[2].message_id), 36);
  assert_int_equal(shmq_send_batch(q, entries, 0, results), SHMQ_EMPTY_BATCH_REQUEST);
  entries[0].id = "same";
  entries[1].id = "same";
  assert_int_equal(shmq_send_batch(q, entries, 2, results), SHMQ_BATCH_ENTRY_IDS_NOT_DISTINCT);

  shmq_receive_options r = shmq_receive_options_default();
  r.max_messages = 10;
  r.wait_time_ms = 0;
  shmq_messages* got = NULL;
  assert_int_equal(shmq_receive(q, &r, &got), SHMQ_OK);
  assert_int_equal(got->count, 2);
  const char* handles[3] = {got->messages[0].receipt_handle, got->messages[1].receipt_handle, "bogus"};
  const uint32_t seconds[3] = {0, 600, 0};
  int statuses[3];
  assert_int_equal(shmq_change_visibility_batch(q, handles, seconds, 3, statuses), SHMQ_OK);
  assert_int_equal(statuses[0], SHMQ_OK);
  assert_int_equal(statuses[1], SHMQ_OK);
  assert_int_equal(statuses[2], SHMQ_INVALID_RECEIPT_HANDLE);
  uint64_t visible = 0, in_flight = 0;
  shmq_queue_counts(q, &visible, &in_flight, NULL);
  assert_int_equal(visible, 1);
  assert_int_equal(in_flight, 1);
  assert_int_equal(shmq_delete_batch(q, handles, 3, statuses), SHMQ_OK);
  assert_int_equal(statuses[1], SHMQ_OK);
  assert_int_equal(statuses[2], SHMQ_INVALID_RECEIPT_HANDLE);
  shmq_messages_free(got);
  shmq_queue_close(q);
}

static void a_fifo_queue_keeps_order_and_deduplicates(void** state) {
  (void)state;
  const shmq_attribute fifo[] = {{"FifoQueue", "true"}};
  shmq_queue* q = make_queue("orders.fifo", fifo, 1);
  shmq_send_options o = shmq_send_options_default();
  o.group_id = "g1";
  shmq_send_result sent;
  char body[32];
  char dedup[32];
  for (int i = 0; i < 5; ++i) {
    snprintf(body, sizeof body, "m%d", i);
    snprintf(dedup, sizeof dedup, "d%d", i);
    o.deduplication_id = dedup;
    assert_int_equal(shmq_send(q, body, strlen(body), &o, &sent), SHMQ_OK);
    assert_int_equal(strlen(sent.sequence_number), 20);
    assert_int_equal(sent.duplicate, 0);
  }
  o.deduplication_id = "d2"; /* within five minutes: dropped */
  assert_int_equal(shmq_send(q, "again", 5, &o, &sent), SHMQ_OK);
  assert_int_equal(sent.duplicate, 1);
  o.group_id = NULL;
  assert_int_equal(shmq_send(q, "no group", 8, &o, NULL), SHMQ_MISSING_PARAMETER);

  shmq_receive_options r = shmq_receive_options_default();
  r.max_messages = 10;
  r.wait_time_ms = 0;
  shmq_messages* got = NULL;
  assert_int_equal(shmq_receive(q, &r, &got), SHMQ_OK);
  assert_int_equal(got->count, 5);
  for (size_t i = 0; i < got->count; ++i) {
    snprintf(body, sizeof body, "m%zu", i);
    assert_int_equal(got->messages[i].body_len, strlen(body));
    assert_memory_equal(got->messages[i].body, body, strlen(body));
    assert_string_equal(got->messages[i].group_id, "g1");
  }
  shmq_messages_free(got);
  shmq_queue_close(q);
}

/* ---- waiting ---- */

struct long_poll {
  shmq_queue* queue;
  int status;
  size_t count;
  double took;
};

static void* long_poll_thread(void* arg) {
  struct long_poll* p = arg;
  shmq_receive_options r = shmq_receive_options_default();
  r.wait_time_ms = 10000;
  shmq_messages* got = NULL;
  const double start = now_s();
  p->status = shmq_receive(p->queue, &r, &got);
  p->took = now_s() - start;
  if (got) {
    p->count = got->count;
    shmq_messages_free(got);
  }
  return NULL;
}

static void a_long_poll_wakes_when_a_message_arrives(void** state) {
  (void)state;
  shmq_queue* q = make_queue("long-poll", NULL, 0);
  struct long_poll p = {q, -1, 0, 0};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, long_poll_thread, &p), 0);
  sleep_ms(300); /* asleep by now */
  assert_int_equal(shmq_send(q, "wake up", 7, NULL, NULL), SHMQ_OK);
  pthread_join(t, NULL);
  assert_int_equal(p.status, SHMQ_OK);
  assert_int_equal(p.count, 1);
  assert_true(p.took >= 0.25);
  assert_true(p.took < 5.0); /* woken by the send, not by its 10 s timeout */
  shmq_queue_close(q);
}

/* ---- kill -9 ---- */

/* A C client that sends numbered messages as fast as it can, writing the
 * number of each confirmed send to `fd`, until it is killed. */
static void sender_child(int fd) {
  shmq_client* c = NULL;
  shmq_queue* q = NULL;
  if (shmq_client_open(ns, &c) != SHMQ_OK || shmq_queue_open(c, "killed", &q) != SHMQ_OK) _exit(2);
  char body[64];
  for (uint32_t i = 0;; ++i) {
    const int n = snprintf(body, sizeof body, "msg-%u-%u", i, i ^ 0x5a5a5a5au);
    if (shmq_send(q, body, (size_t)n, NULL, NULL) != SHMQ_OK) _exit(3);
    if (write(fd, &i, sizeof i) != sizeof i) _exit(4);
  }
}

static void a_killed_sender_loses_no_confirmed_message(void** state) {
  (void)state;
  shmq_queue* q = make_queue("killed", NULL, 0);
  int pipe_fds[2];
  assert_int_equal(pipe(pipe_fds), 0);
  const pid_t child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    close(pipe_fds[0]);
    sender_child(pipe_fds[1]);
  }
  close(pipe_fds[1]);
  /* Let it send (and take slots into its cache), then kill it mid-stream. */
  uint32_t confirmed = 0, n;
  size_t reads = 0;
  while (reads < 2000 && read(pipe_fds[0], &n, sizeof n) == sizeof n) {
    confirmed = n + 1;
    ++reads;
  }
  kill(child, SIGKILL);
  waitpid(child, NULL, 0);
  while (read(pipe_fds[0], &n, sizeof n) == sizeof n) confirmed = n + 1;
  close(pipe_fds[0]);
  assert_true(confirmed >= 2000);

  /* Every confirmed send is there, whole; a send in progress at the kill
   * may be there too, never torn. */
  unsigned char* seen = calloc(confirmed + 1, 1);
  assert_non_null(seen);
  shmq_receive_options r = shmq_receive_options_default();
  r.max_messages = 10;
  r.wait_time_ms = 0;
  size_t empty_rounds = 0;
  for (;;) {
    shmq_messages* got = NULL;
    assert_int_equal(shmq_receive(q, &r, &got), SHMQ_OK);
    if (got->count == 0) {
      shmq_messages_free(got);
      /* The daemon commits what the dead sender left in its cache. */
      if (++empty_rounds > 100) break;
      sleep_ms(20);
      continue;
    }
    for (size_t i = 0; i < got->count; ++i) {
      char text[64] = {0};
      assert_true(got->messages[i].body_len < sizeof text);
      memcpy(text, got->messages[i].body, got->messages[i].body_len);
      unsigned a = 0, b = 0;
      assert_int_equal(sscanf(text, "msg-%u-%u", &a, &b), 2);
      assert_int_equal(b, a ^ 0x5a5a5a5au);
      assert_true(a <= confirmed);
      seen[a] = 1;
      assert_int_equal(shmq_delete(q, got->messages[i].receipt_handle), SHMQ_OK);
    }
    shmq_messages_free(got);
  }
  for (uint32_t i = 0; i < confirmed; ++i) {
    if (!seen[i]) fail_msg("confirmed message %u of %u is lost", i, confirmed);
  }
  free(seen);
  /* And the queue goes on working for the others. */
  assert_int_equal(shmq_send(q, "after", 5, NULL, NULL), SHMQ_OK);
  shmq_messages* got = NULL;
  assert_int_equal(shmq_receive(q, &r, &got), SHMQ_OK);
  assert_int_equal(got->count, 1);
  shmq_messages_free(got);
  shmq_queue_close(q);
}

/* ---- remote endpoints ---- */

static shmq_client* open_remote(const char* secret_key) {
  shmq_endpoint e;
  shmq_endpoint_init(&e);
  e.url = bridge_url;
  e.region = "us-east-1"; /* the bridge's --region, which it verifies signatures for */
  e.access_key_id = kAccessKey;
  e.secret_access_key = secret_key;
  shmq_client* c = NULL;
  assert_int_equal(shmq_client_open_endpoint(&e, &c), SHMQ_OK);
  assert_non_null(c);
  return c;
}

static void a_remote_client_works_the_queues_of_the_daemon(void** state) {
  (void)state;
  shmq_client* remote = open_remote(kSecretKey);
  assert_string_equal(shmq_client_endpoint_url(remote), bridge_url);
  assert_string_equal(shmq_client_endpoint_url(client), "");

  /* Administration over HTTP; the daemon's local clients see the result. */
  const shmq_attribute attrs[] = {{"VisibilityTimeout", "40"}};
  assert_int_equal(shmq_create_queue(remote, "remote-jobs", attrs, 1), SHMQ_OK);
  assert_int_equal(shmq_create_queue(remote, "remote-jobs", attrs, 1), SHMQ_OK); /* idempotent */
  assert_string_equal(attribute("remote-jobs", "VisibilityTimeout"), "40");
  shmq_list* names = NULL;
  assert_int_equal(shmq_list_queues(remote, "remote-", &names), SHMQ_OK);
  assert_int_equal(names->count, 1);
  assert_string_equal(names->items[0].name, "remote-jobs");
  shmq_list_free(names);

  shmq_queue* rq = NULL;
  assert_int_equal(shmq_queue_open(remote, "remote-jobs", &rq), SHMQ_OK);
  assert_string_equal(shmq_queue_name(rq), "remote-jobs");
  shmq_queue* lq = make_queue("remote-jobs", attrs, 1);

  /* Sent remotely with every attribute type: in shared memory at once. */
  const unsigned char bytes[] = {0x00, 0xff, 0x10};
  const shmq_message_attribute mattrs[] = {
      {"kind", "String", "image", 5}, {"size", "Number.int", "1024", 4}, {"raw", "Binary", bytes, sizeof bytes}};
  shmq_send_options o = shmq_send_options_default();
  o.attributes = mattrs;
  o.attribute_count = 3;
  shmq_send_result sent;
  const char body[] = "over http, \xc3\xa9t\xc3\xa9";
  assert_int_equal(shmq_send(rq, body, sizeof body - 1, &o, &sent), SHMQ_OK);
  assert_int_equal(strlen(sent.message_id), 36);
  assert_int_equal(visible_of(lq), 1);
  uint64_t visible = 9, in_flight = 9;
  shmq_queue_counts(rq, &visible, &in_flight, NULL); /* a GetQueueAttributes call */
  assert_int_equal(visible, 1);
  assert_int_equal(in_flight, 0);

  /* Received remotely, whole; deleted remotely. */
  shmq_receive_options r = shmq_receive_options_default();
  r.max_messages = 10;
  r.wait_time_ms = 0;
  shmq_messages* got = NULL;
  assert_int_equal(shmq_receive(rq, &r, &got), SHMQ_OK);
  assert_int_equal(got->count, 1);
  const shmq_message* m = &got->messages[0];
  assert_int_equal(m->body_len, sizeof body - 1);
  assert_memory_equal(m->body, body, sizeof body - 1);
  assert_string_equal(m->message_id, sent.message_id);
  assert_int_equal(m->receive_count, 1);
  assert_true(m->sent_timestamp_ms > 1700000000000ull);
  assert_true(strlen(m->receipt_handle) > 0 && strlen(m->receipt_handle) < SHMQ_RECEIPT_HANDLE_SIZE);
  expect_raw_and_size_attributes(m, bytes, sizeof bytes);
  shmq_queue_counts(lq, NULL, &in_flight, NULL);
  assert_int_equal(in_flight, 1);
  assert_int_equal(shmq_delete(rq, m->receipt_handle), SHMQ_OK);
  shmq_messages_free(got);
  shmq_queue_counts(lq, &visible, &in_flight, NULL);
  assert_int_equal(visible, 0);
  assert_int_equal(in_flight, 0);

  /* Sent locally, long-polled remotely into the caller's buffers. */
  assert_int_equal(shmq_send(lq, "from shared memory", 18, NULL, &sent), SHMQ_OK);
  char text[64];
  char handle[SHMQ_RECEIPT_HANDLE_SIZE];
  char id[SHMQ_MESSAGE_ID_SIZE];
  size_t len = 0;
  int received = 0;
  r.wait_time_ms = 2000;
  assert_int_equal(shmq_receive_into(rq, &r, text, sizeof text, &len, handle, id, &received), SHMQ_OK);
  assert_int_equal(received, 1);
  assert_int_equal(len, 18);
  assert_memory_equal(text, "from shared memory", 18);
  assert_string_equal(id, sent.message_id);
  /* Given back, received again (its count says so), then deleted. */
  assert_int_equal(shmq_change_visibility(rq, handle, 0), SHMQ_OK);
  assert_int_equal(visible_of(lq), 1);
  assert_int_equal(shmq_receive(rq, &r, &got), SHMQ_OK);
  assert_int_equal(got->count, 1);
  assert_int_equal(got->messages[0].receive_count, 2);
  assert_int_equal(shmq_delete(rq, got->messages[0].receipt_handle), SHMQ_OK);
  shmq_messages_free(got);
  assert_int_equal(shmq_delete(rq, "not-a-handle"), SHMQ_INVALID_RECEIPT_HANDLE);

  /* Batches: one result per entry, over HTTP as in shared memory. */
  shmq_send_entry entries[3];
  memset(entries, 0, sizeof entries);
  const char* bodies[] = {"one", "two", "three"};
  for (int i = 0; i < 3; ++i) {
    entries[i].body = bodies[i];
    entries[i].body_len = strlen(bodies[i]);
    entries[i].options = shmq_send_options_default();
  }
  shmq_batch_result results[3];
  assert_int_equal(shmq_send_batch(rq, entries, 3, results), SHMQ_OK);
  for (int i = 0; i < 3; ++i) {
    assert_int_equal(results[i].status, SHMQ_OK);
    assert_int_equal(strlen(results[i].message_id), 36);
  }
  assert_int_equal(shmq_send_batch(rq, entries, 0, results), SHMQ_EMPTY_BATCH_REQUEST);
  assert_int_equal(visible_of(lq), 3);
  r.wait_time_ms = 0;
  assert_int_equal(shmq_receive(lq, &r, &got), SHMQ_OK);
  assert_int_equal(got->count, 3);
  const char* handles[4] = {got->messages[0].receipt_handle, got->messages[1].receipt_handle,
                            got->messages[2].receipt_handle, "bogus"};
  int statuses[4];
  assert_int_equal(shmq_delete_batch(rq, handles, 4, statuses), SHMQ_OK);
  assert_int_equal(statuses[0], SHMQ_OK);
  assert_int_equal(statuses[1], SHMQ_OK);
  assert_int_equal(statuses[2], SHMQ_OK);
  assert_int_equal(statuses[3], SHMQ_INVALID_RECEIPT_HANDLE);
  shmq_messages_free(got);
  shmq_queue_counts(lq, &visible, &in_flight, NULL);
  assert_int_equal(visible + in_flight, 0);

  /* Deleted remotely: gone for both. */
  assert_int_equal(shmq_delete_queue(remote, "remote-jobs"), SHMQ_OK);
  assert_int_equal(shmq_send(rq, "late", 4, NULL, NULL), SHMQ_QUEUE_DOES_NOT_EXIST);
  shmq_queue* none = NULL;
  assert_int_equal(shmq_queue_open(client, "remote-jobs", &none), SHMQ_QUEUE_DOES_NOT_EXIST);
  assert_int_equal(shmq_queue_open(remote, "remote-jobs", &none), SHMQ_QUEUE_DOES_NOT_EXIST);
  assert_null(none);
  shmq_queue_close(lq);
  shmq_queue_close(rq);
  shmq_client_close(remote);
}

static void a_wrong_secret_is_permission_denied(void** state) {
  (void)state;
  shmq_client* bad = open_remote("not-the-secret");
  assert_int_equal(shmq_create_queue(bad, "never-made", NULL, 0), SHMQ_PERMISSION_DENIED);
  assert_non_null(strstr(shmq_client_last_error(), "SignatureDoesNotMatch"));
  shmq_queue* q = NULL;
  assert_int_equal(shmq_queue_open(bad, "never-made", &q), SHMQ_PERMISSION_DENIED);
  assert_null(q);
  shmq_client_close(bad);
  /* Nothing was made. */
  shmq_list* names = NULL;
  assert_int_equal(shmq_list_queues(client, "never-", &names), SHMQ_OK);
  assert_int_equal(names->count, 0);
  shmq_list_free(names);
}

/* Sets (value non-NULL) or unsets an environment variable; returns its old
 * value, for restore(), in `saved` (NULL if it was unset). */
static const char* swap_env(const char* name, const char* value, char* saved, size_t size) {
  const char* old = getenv(name);
  if (old) snprintf(saved, size, "%s", old);
  if (value) {
    setenv(name, value, 1);
  } else {
    unsetenv(name);
  }
  return old ? saved : NULL;
}

static void restore_env(const char* name, const char* saved) {
  if (saved) {
    setenv(name, saved, 1);
  } else {
    unsetenv(name);
  }
}

static void open_default_follows_shmq_endpoint(void** state) {
  (void)state;
  static const char* const names[] = {"SHMQ_ENDPOINT",     "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                      "AWS_SESSION_TOKEN", "AWS_REGION",        "AWS_PROFILE"};
  const char* values[] = {bridge_url, kAccessKey, kSecretKey, NULL, "us-east-1", NULL};
  char saved_text[6][256];
  const char* saved[6];
  for (int i = 0; i < 6; ++i) saved[i] = swap_env(names[i], values[i], saved_text[i], sizeof saved_text[i]);

  /* SHMQ_ENDPOINT names the endpoint; the credentials come from the environment. */
  shmq_client* c = NULL;
  assert_int_equal(shmq_client_open_default(&c), SHMQ_OK);
  assert_string_equal(shmq_client_endpoint_url(c), bridge_url);
  assert_int_equal(shmq_create_queue(c, "via-env", NULL, 0), SHMQ_OK);
  shmq_client_close(c);
  /* shmq_client_open ignores it: a local client of the namespace. */
  assert_int_equal(shmq_client_open(ns, &c), SHMQ_OK);
  assert_string_equal(shmq_client_endpoint_url(c), "");
  shmq_queue* q = NULL;
  assert_int_equal(shmq_queue_open(c, "via-env", &q), SHMQ_OK);
  shmq_queue_close(q);
  shmq_client_close(c);

  /* Unset (or empty): the daemon of namespace "default", if one runs. */
  setenv("SHMQ_ENDPOINT", "", 1);
  const int status = shmq_client_open_default(&c);
  if (status == SHMQ_OK) {
    assert_string_equal(shmq_client_endpoint_url(c), "");
    shmq_client_close(c);
  } else {
    assert_int_equal(status, SHMQ_DAEMON_UNAVAILABLE);
    assert_null(c);
  }
  for (int i = 0; i < 6; ++i) restore_env(names[i], saved[i]);
}

int main(void) {
  const struct CMUnitTest without_daemon[] = {
      cmocka_unit_test(every_code_has_a_name_and_a_message),
      cmocka_unit_test(no_daemon_is_daemon_unavailable),
      cmocka_unit_test(an_endpoint_starts_at_the_defaults_and_bad_ones_are_refused),
      cmocka_unit_test(an_endpoint_nobody_serves_is_daemon_unavailable),
  };
  const struct CMUnitTest with_daemon[] = {
      cmocka_unit_test(queues_are_created_listed_changed_and_deleted),
      cmocka_unit_test(purge_says_how_many),
      cmocka_unit_test(a_message_round_trips_with_its_attributes),
      cmocka_unit_test(bad_arguments_are_refused_and_nothing_is_sent),
      cmocka_unit_test(receive_into_fills_the_callers_buffers),
      cmocka_unit_test(batches_report_each_entry),
      cmocka_unit_test(a_fifo_queue_keeps_order_and_deduplicates),
      cmocka_unit_test(a_long_poll_wakes_when_a_message_arrives),
      cmocka_unit_test(a_killed_sender_loses_no_confirmed_message),
  };
  const struct CMUnitTest with_bridge[] = {
      cmocka_unit_test(a_remote_client_works_the_queues_of_the_daemon),
      cmocka_unit_test(a_wrong_secret_is_permission_denied),
      cmocka_unit_test(open_default_follows_shmq_endpoint),
  };
  int failed = cmocka_run_group_tests_name("c_api_without_daemon", without_daemon, NULL, NULL);
  failed += cmocka_run_group_tests_name("c_api", with_daemon, start_daemon, stop_daemon);
  failed += cmocka_run_group_tests_name("c_api_remote", with_bridge, start_daemon_with_bridge, stop_daemon);
  return failed == 0 ? 0 : 1;
}
