/* A C program of a libshmq user, built against the installed library with
 * a C compiler: sends a message to a queue of the daemon in namespace
 * argv[1], receives it and prints the library's version and the body. */
#include <shmq/shmq.h>
#include <stdio.h>

static int failed(const char* what, int status) {
  fprintf(stderr, "%s: %s (%s) %s\n", what, shmq_errname(status), shmq_strerror(status), shmq_client_last_error());
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: app-c NAMESPACE\n");
    return 2;
  }
  shmq_client* client = NULL;
  shmq_queue* queue = NULL;
  int status = shmq_client_open(argv[1], &client);
  if (status != SHMQ_OK) return failed("connect", status);
  if ((status = shmq_create_queue(client, "installed-c", NULL, 0)) != SHMQ_OK) return failed("create", status);
  if ((status = shmq_queue_open(client, "installed-c", &queue)) != SHMQ_OK) return failed("open", status);
  static const char body[] = "hello from C";
  if ((status = shmq_send(queue, body, sizeof body - 1, NULL, NULL)) != SHMQ_OK) return failed("send", status);
  shmq_messages* got = NULL;
  if ((status = shmq_receive(queue, NULL, &got)) != SHMQ_OK) return failed("receive", status);
  if (got->count != 1) return failed("receive", SHMQ_OK);
  printf("shmq %s: %.*s\n", shmq_version(), (int)got->messages[0].body_len, (const char*)got->messages[0].body);
  if ((status = shmq_delete(queue, got->messages[0].receipt_handle)) != SHMQ_OK) return failed("delete", status);
  shmq_messages_free(got);
  shmq_queue_close(queue);
  shmq_client_close(client);
  return 0;
}
