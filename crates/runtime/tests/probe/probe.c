/* Seccomp probe for tests/hardening.rs: tries syscalls Docker's default
 * profile denies and prints each one's errno (0 = allowed). */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <unistd.h>

static int err(long rc) { return rc == -1 ? errno : 0; }

int main(void) {
    printf("unshare=%d\n", err(unshare(CLONE_NEWUSER)));
    printf("mount=%d\n", err(mount("t", "/tmp", "tmpfs", 0, 0)));
    printf("personality=%d\n", err(personality(0x1234)));
    printf("keyctl=%d\n", err(syscall(SYS_keyctl, 0, -3, 0)));
    printf("clone3=%d\n", err(syscall(SYS_clone3, NULL, 0)));
    printf("getppid=%d\n", err(getppid()));
    return 0;
}
