/* dist_allreduce.c — Open MPI's own all-reduce figure, the reference for
 * kbl.dist's (bench/dist_allreduce.lua): MPI_Allreduce of float32 sums, in
 * place, for the sizes given (bytes), the median of `reps` timed calls after
 * warm-up; rank 0 prints "size_bytes seconds" lines. Written here because
 * Debian has no OSU micro-benchmarks package. bench/dist.sh builds it with mpicc.
 *   mpirun -n 2 ./dist_allreduce 4096 1048576 ... */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    for (int i = 1; i < argc; i++) {
        long bytes = atol(argv[i]);
        int n = (int)(bytes / 4), reps = bytes >= (1 << 22) ? 20 : 100;
        float *buf = calloc((size_t)n, sizeof *buf);
        double *t = calloc((size_t)reps, sizeof *t);
        for (int w = 0; w < 5; w++) MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        for (int r = 0; r < reps; r++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            t[r] = MPI_Wtime() - t0;
        }
        qsort(t, (size_t)reps, sizeof *t, cmp);
        if (rank == 0) printf("%ld %.9f\n", bytes, t[reps / 2]);
        free(buf);
        free(t);
    }
    MPI_Finalize();
    return 0;
}
