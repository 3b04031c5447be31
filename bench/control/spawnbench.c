/* spawnbench: uv_spawn (libuv forks on Linux) against posix_spawn (glibc
 * uses clone(CLONE_VM|CLONE_VFORK)) from a libuv process shaped like the
 * daemon: threadpool started, a few MiB of heap touched between spawns.
 * Prints how long the loop thread is blocked in the spawn call, and the time
 * from spawn to the child's exit.  usage: spawnbench N PROGRAM */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <uv.h>
extern char **environ;
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e3+t.tv_nsec/1e6;}
static int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
static void work(uv_work_t*w){(void)w;} static void after(uv_work_t*w,int s){(void)w;(void)s;}
static int done; static void on_exit_cb(uv_process_t*p,int64_t s,int sig){(void)s;(void)sig;done=1;uv_close((uv_handle_t*)p,NULL);}
int main(int argc,char**argv){
 int n=atoi(argv[1]); const char*prog=argv[2];
 uv_loop_t*loop=uv_default_loop(); uv_work_t w[8]; for(int i=0;i<8;i++)uv_queue_work(loop,&w[i],work,after); uv_run(loop,UV_RUN_DEFAULT);
 char*heap=malloc(3<<20); memset(heap,1,3<<20);
 double*blk=malloc(n*sizeof(double)),*tot=malloc(n*sizeof(double));
 for(int mode=0;mode<2;mode++){
  for(int i=0;i<n;i++){
   heap[(i*4096)%(3<<20)]++; /* the loop touches memory between spawns, as the daemon does */
   memset(heap,i,1<<20);
   double t0=now();
   if(mode==0){uv_process_t p; uv_process_options_t o={0}; char*av[]={(char*)prog,NULL}; o.file=prog;o.args=av;o.exit_cb=on_exit_cb;o.flags=UV_PROCESS_DETACHED;
    done=0; if(uv_spawn(loop,&p,&o)){fprintf(stderr,"spawn failed\n");return 1;} blk[i]=now()-t0; while(!done)uv_run(loop,UV_RUN_ONCE); uv_run(loop,UV_RUN_NOWAIT);}
   else{pid_t pid; posix_spawnattr_t a; posix_spawnattr_init(&a); posix_spawnattr_setpgroup(&a,0); posix_spawnattr_setflags(&a,POSIX_SPAWN_SETPGROUP|POSIX_SPAWN_SETSIGMASK);
    sigset_t e; sigemptyset(&e); posix_spawnattr_setsigmask(&a,&e); char*av[]={(char*)prog,NULL};
    if(posix_spawn(&pid,prog,NULL,&a,av,environ)){fprintf(stderr,"posix_spawn failed\n");return 1;} blk[i]=now()-t0; int st; waitpid(pid,&st,0); posix_spawnattr_destroy(&a);}
   tot[i]=now()-t0;}
  qsort(blk,n,sizeof(double),cmp); qsort(tot,n,sizeof(double),cmp);
  printf("%-12s loop blocked p50 %.2f p99 %.2f ms; spawn-to-exit p50 %.2f p99 %.2f ms\n",mode?"posix_spawn":"uv_spawn",blk[n/2],blk[n*99/100],tot[n/2],tot[n*99/100]);}
 return 0;}
