/*
 * The verbs of nfsv3driver-mount, one function each, called from mount.c's
 * dispatch table after the capabilities have been dropped to the verb's own
 * and the mount root has been opened (privilege_open_root).
 *
 * argc and argv are the arguments after MOUNT_ROOT, their count already
 * checked against the table. A verb returns NFSV3_EXIT_OK or dies.
 */
#ifndef NFSV3_VERBS_H
#define NFSV3_VERBS_H

/* bind MOUNT_ROOT SOURCE_DIR NAME rw|ro (mount.c) */
int verb_bind(int root_fd, int argc, char **argv);
/* unmount MOUNT_ROOT NAME lazy|force (mount.c) */
int verb_unmount(int root_fd, int argc, char **argv);
/* nfs MOUNT_ROOT KERNEL_KEY HOST:/EXPORT ADDR OPTIONS (nfs.c) */
int verb_nfs(int root_fd, int argc, char **argv);

#endif
