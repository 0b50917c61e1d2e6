/* File-system helpers of the harness. */
#ifndef TB_FS_H
#define TB_FS_H

/* Creates every directory above `path` (like mkdir -p of its dirname);
 * an error names `path` and the directory that could not be made. */
int tb_make_parent_dirs(const char *path);

#endif
