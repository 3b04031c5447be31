/*
 * The operator's smoke test: `nfsv3driver smoke --driver ADDR --source SRC`.
 *
 * It drives a running driver the way volman does (a new connection per call,
 * no Accept header, no mount ID): Activate, Create, Mount, then writes, reads,
 * checks the owner of and deletes a file as the application's uid, then
 * Unmount and Remove. Each step is printed with its time; the exit status is
 * 0 when every step passed, 1 when one failed (after undoing what it
 * created), 2 on a usage error.
 */
#ifndef NFSV3_SMOKE_H
#define NFSV3_SMOKE_H

/* argv[0] is "smoke"; the options follow. Returns the process exit status. */
int smoke_main(int argc, char **argv);

#endif
