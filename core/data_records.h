/* data_records.h — the record shard format's pieces that data_records.c
 * (writing, checking, reading) shares with data_records_stream.c. Private to
 * those two files. */
#ifndef KBL_DATA_RECORDS_H
#define KBL_DATA_RECORDS_H

#include <stdint.h>
#include <stdio.h>
#include <zstd.h>

/* One shard, opened and checked: its block table holds per block
 * {offset, zstd bytes, rows, hash of the raw block}. */
typedef struct {
    FILE *f;
    const char *path;
    const char *map; /* the file mapped (NULL: read with pread) */
    int64_t size;
    uint32_t nblocks;
    uint64_t *table;
    int64_t count;
} kbl_records_shard;

/* A block's bytes: its zstd frame and the rows it holds (x rows, then y rows). */
typedef struct {
    char *z, *raw;
    int64_t zcap, rawcap;
} kbl_records_block;

/* Opens and checks a shard against what the index says (count, size, row
 * sizes, checksum): every size is checked against the file before
 * allocating. -1 with the message in err; close it either way. */
int kbl_records_shard_open(kbl_records_shard *s, const char *path, int64_t count, int64_t size, uint64_t checksum,
                           int64_t xr, int64_t yr, char *err, size_t cap);
void kbl_records_shard_close(kbl_records_shard *s);
void kbl_records_block_free(kbl_records_block *bb);
/* Reads, decompresses and checks block b (table entry e, its first row row0)
 * of shard s into bb->raw; -1 names the shard and the records. */
int kbl_records_decode_block(ZSTD_DCtx *dc, kbl_records_block *bb, const kbl_records_shard *s, const uint64_t *e,
                             uint32_t b, int64_t row0, int64_t rowbytes, char *err, size_t cap);

#endif
