/* bench/dnnl_ops.c — oneDNN's primitives on the shapes of bench/cpu_ops.lua
 * (batch norm, layer norm, softmax, eltwise, 2x2 pooling on nchw and blocked
 * nChw16c), in CPU ms per call, best of 7 runs of 10: the other side of the
 * measurements beside the kernels of core/cpu/. Not part of the library.
 *   cc -O2 -fopenmp bench/dnnl_ops.c -o /tmp/dnnl_ops -ldnnl && OMP_NUM_THREADS=1 /tmp/dnnl_ops */
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double cpu(void){struct timespec t;clock_gettime(CLOCK_PROCESS_CPUTIME_ID,&t);return t.tv_sec+t.tv_nsec*1e-9;}
#define CK(x) do{dnnl_status_t s_=(x); if(s_){printf("fail %s %d\n",#x,s_);exit(1);}}while(0)
static dnnl_engine_t eng; static dnnl_stream_t st;
static double tbest(dnnl_primitive_t p,int n,dnnl_exec_arg_t*a){for(int i=0;i<3;i++)dnnl_primitive_execute(p,st,n,a);double best=1e9;for(int r=0;r<7;r++){double t0=cpu();for(int i=0;i<10;i++)CK(dnnl_primitive_execute(p,st,n,a));double t=(cpu()-t0)/10;if(t<best)best=t;}return best*1e3;}
static dnnl_memory_t mem(const dnnl_memory_desc_t*md){dnnl_memory_t m;CK(dnnl_memory_create(&m,md,eng,DNNL_MEMORY_ALLOCATE));float*p;dnnl_memory_get_data_handle(m,(void**)&p);size_t n=dnnl_memory_desc_get_size(md)/4;for(size_t i=0;i<n;i++)p[i]=rand()/(float)RAND_MAX-0.5f;return m;}
static const char*impl(dnnl_primitive_desc_t pd){const char*s;dnnl_primitive_desc_query(pd,dnnl_query_impl_info_str,0,&s);return s;}
static void run(int N,int C,int H,int W,dnnl_alg_kind_t alg,dnnl_format_tag_t tag){
  int OH=H/2,OW=W/2;
  dnnl_memory_desc_t xm,ym; dnnl_dims_t xd={N,C,H,W},yd={N,C,OH,OW};
  CK(dnnl_memory_desc_init_by_tag(&xm,4,xd,dnnl_f32,tag)); CK(dnnl_memory_desc_init_by_tag(&ym,4,yd,dnnl_f32,tag));
  dnnl_pooling_v2_desc_t fd,bd; dnnl_dims_t k={2,2},s={2,2},dl={0,0},pd0={0,0};
  CK(dnnl_pooling_v2_forward_desc_init(&fd,dnnl_forward_training,alg,&xm,&ym,s,k,dl,pd0,pd0));
  dnnl_primitive_desc_t fpd,bpd; CK(dnnl_primitive_desc_create(&fpd,&fd,NULL,eng,NULL));
  CK(dnnl_pooling_v2_backward_desc_init(&bd,alg,&xm,&ym,s,k,dl,pd0,pd0));
  CK(dnnl_primitive_desc_create(&bpd,&bd,NULL,eng,fpd));
  const char*impl; dnnl_primitive_desc_query(fpd,dnnl_query_impl_info_str,0,&impl);
  const dnnl_memory_desc_t*wsm=dnnl_primitive_desc_query_md(fpd,dnnl_query_workspace_md,0);
  dnnl_memory_t X,Y,WS=NULL,DX,DY;
  CK(dnnl_memory_create(&X,&xm,eng,DNNL_MEMORY_ALLOCATE));CK(dnnl_memory_create(&Y,&ym,eng,DNNL_MEMORY_ALLOCATE));
  CK(dnnl_memory_create(&DX,&xm,eng,DNNL_MEMORY_ALLOCATE));CK(dnnl_memory_create(&DY,&ym,eng,DNNL_MEMORY_ALLOCATE));
  float*xp; dnnl_memory_get_data_handle(X,(void**)&xp); for(long i=0;i<(long)N*C*H*W;i++)xp[i]=rand()/(float)RAND_MAX;
  float*dyp; dnnl_memory_get_data_handle(DY,(void**)&dyp); for(long i=0;i<(long)N*C*OH*OW;i++)dyp[i]=1;
  int na=2; dnnl_exec_arg_t fa[3]={{DNNL_ARG_SRC,X},{DNNL_ARG_DST,Y}};
  if(wsm && wsm->ndims){CK(dnnl_memory_create(&WS,wsm,eng,DNNL_MEMORY_ALLOCATE)); fa[na++]=(dnnl_exec_arg_t){DNNL_ARG_WORKSPACE,WS};}
  dnnl_primitive_t fp,bp; CK(dnnl_primitive_create(&fp,fpd));CK(dnnl_primitive_create(&bp,bpd));
  dnnl_exec_arg_t ba[3]={{DNNL_ARG_DIFF_DST,DY},{DNNL_ARG_DIFF_SRC,DX}}; int nb=2; if(WS)ba[nb++]=(dnnl_exec_arg_t){DNNL_ARG_WORKSPACE,WS};
  double f=tbest(fp,na,fa),b=tbest(bp,nb,ba);
  printf("T=%d %s_pool2d 2x2 %s %dx%dx%dx%d: fwd %.3f ms bwd %.3f ms (%s)\n",1,alg==dnnl_pooling_max?"max":"avg",tag==dnnl_nchw?"nchw":"nChw16c",N,C,H,W,f,b,impl);
}
int main(void){CK(dnnl_engine_create(&eng,dnnl_cpu,0));CK(dnnl_stream_create(&st,eng,0));
 for(int a=0;a<2;a++) for(int t=0;t<2;t++){ dnnl_alg_kind_t alg=a?dnnl_pooling_avg_exclude_padding:dnnl_pooling_max; dnnl_format_tag_t tag=t?dnnl_nChw16c:dnnl_nchw;
    run(128,32,28,28,alg,tag); run(128,64,14,14,alg,tag);}
 /* batch norm training fwd + bwd, nchw 128x32x28x28 and 128x64x14x14 */
 long shapes[2][4]={{128,32,28,28},{128,64,14,14}};
 for(int s=0;s<2;s++){dnnl_memory_desc_t xm; dnnl_dims_t d={shapes[s][0],shapes[s][1],shapes[s][2],shapes[s][3]};
  CK(dnnl_memory_desc_init_by_tag(&xm,4,d,dnnl_f32,dnnl_nchw));
  dnnl_batch_normalization_desc_t fd,bd; unsigned fl=dnnl_use_scaleshift;
  CK(dnnl_batch_normalization_forward_desc_init(&fd,dnnl_forward_training,&xm,1e-5f,fl));
  dnnl_primitive_desc_t fpd,bpd; CK(dnnl_primitive_desc_create(&fpd,&fd,NULL,eng,NULL));
  CK(dnnl_batch_normalization_backward_desc_init(&bd,dnnl_backward,&xm,&xm,1e-5f,fl));
  CK(dnnl_primitive_desc_create(&bpd,&bd,NULL,eng,fpd));
  dnnl_memory_t X=mem(&xm),Y=mem(&xm),DX=mem(&xm),DY=mem(&xm);
  dnnl_memory_t M=mem(dnnl_primitive_desc_query_md(fpd,dnnl_query_exec_arg_md,DNNL_ARG_MEAN)),V=mem(dnnl_primitive_desc_query_md(fpd,dnnl_query_exec_arg_md,DNNL_ARG_VARIANCE)),SS=mem(dnnl_primitive_desc_query_md(fpd,dnnl_query_exec_arg_md,DNNL_ARG_SCALE_SHIFT)),DSS=mem(dnnl_primitive_desc_query_md(bpd,dnnl_query_exec_arg_md,DNNL_ARG_DIFF_SCALE_SHIFT));
  dnnl_primitive_t fp,bp;CK(dnnl_primitive_create(&fp,fpd));CK(dnnl_primitive_create(&bp,bpd));
  dnnl_exec_arg_t fa[5]={{DNNL_ARG_SRC,X},{DNNL_ARG_DST,Y},{DNNL_ARG_MEAN,M},{DNNL_ARG_VARIANCE,V},{DNNL_ARG_SCALE_SHIFT,SS}};
  dnnl_exec_arg_t ba[8]={{DNNL_ARG_SRC,X},{DNNL_ARG_DIFF_DST,DY},{DNNL_ARG_MEAN,M},{DNNL_ARG_VARIANCE,V},{DNNL_ARG_SCALE_SHIFT,SS},{DNNL_ARG_DIFF_SRC,DX},{DNNL_ARG_DIFF_SCALE_SHIFT,DSS}};
  printf("batch_norm %ldx%ldx%ldx%ld nchw: fwd %.3f bwd %.3f ms (%s / %s)\n",d[0],d[1],d[2],d[3],tbest(fp,5,fa),tbest(bp,7,ba),impl(fpd),impl(bpd));}
 /* layer norm [4096, 256] and softmax [128,10], [4096,1000], relu 1M */
 {dnnl_memory_desc_t xm,sm; dnnl_dims_t d={4096,256}; CK(dnnl_memory_desc_init_by_tag(&xm,2,d,dnnl_f32,dnnl_ab));
  dnnl_layer_normalization_desc_t fd,bd; unsigned fl=dnnl_use_scaleshift;
  CK(dnnl_layer_normalization_forward_desc_init(&fd,dnnl_forward_training,&xm,NULL,1e-5f,fl));
  dnnl_primitive_desc_t fpd,bpd; CK(dnnl_primitive_desc_create(&fpd,&fd,NULL,eng,NULL));
  CK(dnnl_layer_normalization_backward_desc_init(&bd,dnnl_backward,&xm,&xm,NULL,1e-5f,fl));
  CK(dnnl_primitive_desc_create(&bpd,&bd,NULL,eng,fpd)); (void)sm;
  dnnl_memory_t X=mem(&xm),Y=mem(&xm),DX=mem(&xm),DY=mem(&xm);
  dnnl_memory_t M=mem(dnnl_primitive_desc_query_md(fpd,dnnl_query_exec_arg_md,DNNL_ARG_MEAN)),V=mem(dnnl_primitive_desc_query_md(fpd,dnnl_query_exec_arg_md,DNNL_ARG_VARIANCE)),SS=mem(dnnl_primitive_desc_query_md(fpd,dnnl_query_exec_arg_md,DNNL_ARG_SCALE_SHIFT)),DSS=mem(dnnl_primitive_desc_query_md(bpd,dnnl_query_exec_arg_md,DNNL_ARG_DIFF_SCALE_SHIFT));
  dnnl_primitive_t fp,bp;CK(dnnl_primitive_create(&fp,fpd));CK(dnnl_primitive_create(&bp,bpd));
  dnnl_exec_arg_t fa[5]={{DNNL_ARG_SRC,X},{DNNL_ARG_DST,Y},{DNNL_ARG_MEAN,M},{DNNL_ARG_VARIANCE,V},{DNNL_ARG_SCALE_SHIFT,SS}};
  dnnl_exec_arg_t ba[7]={{DNNL_ARG_SRC,X},{DNNL_ARG_DIFF_DST,DY},{DNNL_ARG_MEAN,M},{DNNL_ARG_VARIANCE,V},{DNNL_ARG_SCALE_SHIFT,SS},{DNNL_ARG_DIFF_SRC,DX},{DNNL_ARG_DIFF_SCALE_SHIFT,DSS}};
  printf("layer_norm 4096x256: fwd %.3f bwd %.3f ms (%s / %s)\n",tbest(fp,5,fa),tbest(bp,7,ba),impl(fpd),impl(bpd));}
 long sms[2][2]={{128,10},{4096,1000}};
 for(int s=0;s<2;s++){dnnl_memory_desc_t xm; dnnl_dims_t d={sms[s][0],sms[s][1]}; CK(dnnl_memory_desc_init_by_tag(&xm,2,d,dnnl_f32,dnnl_ab));
  for(int lg=0;lg<2;lg++){dnnl_softmax_v2_desc_t sd; CK(dnnl_softmax_v2_forward_desc_init(&sd,dnnl_forward_training,lg?dnnl_softmax_log:dnnl_softmax_accurate,&xm,&xm,1));
  dnnl_primitive_desc_t pd; CK(dnnl_primitive_desc_create(&pd,&sd,NULL,eng,NULL)); dnnl_primitive_t p; CK(dnnl_primitive_create(&p,pd));
  dnnl_memory_t X=mem(&xm),Y=mem(&xm); dnnl_exec_arg_t a[2]={{DNNL_ARG_SRC,X},{DNNL_ARG_DST,Y}};
  printf("%s %ldx%ld: fwd %.4f ms (%s)\n",lg?"log_softmax":"softmax",d[0],d[1],tbest(p,2,a),impl(pd));}}
 {dnnl_memory_desc_t xm; dnnl_dims_t d={1048576}; CK(dnnl_memory_desc_init_by_tag(&xm,1,d,dnnl_f32,dnnl_a));
  int algs[3]={dnnl_eltwise_relu,dnnl_eltwise_logistic,dnnl_eltwise_tanh}; const char*nm[3]={"relu","sigmoid","tanh"};
  for(int i=0;i<3;i++){dnnl_eltwise_desc_t ed; CK(dnnl_eltwise_forward_desc_init(&ed,dnnl_forward_training,algs[i],&xm,0,0));
  dnnl_primitive_desc_t pd; CK(dnnl_primitive_desc_create(&pd,&ed,NULL,eng,NULL)); dnnl_primitive_t p; CK(dnnl_primitive_create(&p,pd));
  dnnl_memory_t X=mem(&xm),Y=mem(&xm); dnnl_exec_arg_t a[2]={{DNNL_ARG_SRC,X},{DNNL_ARG_DST,Y}};
  printf("%s 1M: fwd %.4f ms (%s)\n",nm[i],tbest(p,2,a),impl(pd));}}
}
