#ifndef PAYNOTIFY_CLIBPQ_SHIM_H
#define PAYNOTIFY_CLIBPQ_SHIM_H

#include <libpq-fe.h>

#endif
