/* SHMQ_API marks what libshmq.so exports: the C API (shmq.h) and the C++
 * API's classes and functions. Everything else in the library is hidden
 * (built with -fvisibility=hidden), so that programs cannot come to depend
 * on it and its symbols cannot clash with theirs. C and C++. */
#ifndef SHMQ_EXPORT_H
#define SHMQ_EXPORT_H

#if defined(__GNUC__)
#define SHMQ_API __attribute__((visibility("default")))
#else
#define SHMQ_API
#endif

#endif /* SHMQ_EXPORT_H */
