/* The common tar header, parsed in C: the per-entry hot path of every layer walk.
 *
 * header(buf, pos) -> tuple | None
 *
 * Parses the 512-byte header at buf[pos:pos+512] when it is the common case and returns
 *   (name, path, flag, size, mode, uid, gid, mtime, linkname)
 * where `name` is the stored name (a POSIX prefix joined), `path` its normalised form or None
 * when the name needs the slow path's normalisation (".wh." whiteouts, "//", "/.", a leading
 * ".", hard links), `flag` the type byte and `mode` masked to 0o7777.
 *
 * It returns None, and the Python walker (imagewise/archive/walk.py) does the work, for
 * everything else: fewer than 512 bytes left in `buf`, an all-zero block, a checksum that is not
 * plain octal or does not match the unsigned byte sum, metadata and sparse headers (x g L K S),
 * numbers that are not plain octal (base-256, signs, junk), or a buffer that is not a bytes
 * object or a readable buffer. So the result is always what the Python walker computes; the
 * property test in tests/test_walk_native.py holds both to that on random tar streams.
 *
 * scan(buf, pos, base, max_n, kinds, file_kind, dir_kind) -> tuple | None
 *
 * Runs of such entries at once, as columns (see below): the walk of a layer read in place hands
 * them to visitors that take whole batches (``EntryBatch``), with no object per entry.
 *
 * Names decode as UTF-8 with "surrogateescape", as the Python walker decodes them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define BLOCK 512

/* A numeric field: optional leading spaces, one or more octal digits, then only NUL or space
 * to the end; an empty field (only NUL/space) is `empty_value`. Returns 0 when the field is
 * not of this form (the caller falls back). This is the subset of spellings on which
 * int(field.rstrip(b"\0 ") or b"0", 8) gives this value. */
static int
octal(const unsigned char *f, Py_ssize_t n, long long empty_value, long long *out)
{
    Py_ssize_t i = 0;
    while (i < n && f[i] == ' ')
        i++;
    if (i == n || f[i] == 0) {
        for (Py_ssize_t j = i; j < n; j++)
            if (f[j] != 0 && f[j] != ' ')
                return 0;
        *out = empty_value;
        return 1;
    }
    unsigned long long v = 0;
    Py_ssize_t digits = 0;
    while (i < n && f[i] >= '0' && f[i] <= '7') {
        v = (v << 3) | (unsigned long long)(f[i] - '0');
        i++;
        if (++digits > 20) /* beyond 60 bits: let Python's big ints do it */
            return 0;
    }
    for (; i < n; i++)
        if (f[i] != 0 && f[i] != ' ')
            return 0;
    *out = (long long)v;
    return 1;
}

static Py_ssize_t
cstrlen(const unsigned char *s, Py_ssize_t n)
{
    const unsigned char *z = memchr(s, 0, (size_t)n);
    return z ? (Py_ssize_t)(z - s) : n;
}

/* whether the slow path must normalise `p` (same tests as walk.py's fast path) */
static int
needs_normalising(const unsigned char *p, Py_ssize_t n)
{
    if (n > 0 && p[0] == '.')
        return 1;
    for (Py_ssize_t i = 0; i + 1 < n; i++) {
        if (p[i] == '/' && (p[i + 1] == '/' || p[i + 1] == '.'))
            return 1;
        if (p[i] == '.' && i + 3 < n && p[i + 1] == 'w' && p[i + 2] == 'h' && p[i + 3] == '.')
            return 1;
    }
    return 0;
}

/* One plain header's fields; the strings are new references. */
typedef struct {
    PyObject *name, *path, *link; /* path is Py_None (a new reference) when it needs the slow path */
    int flag;
    long long size, mode, uid, gid, mtime;
} fields;

/* The unsigned byte sum of a header with its checksum field (148..156) counted as eight spaces,
 * eight bytes at a time: each word's bytes are added pairwise into four 16-bit lanes, which
 * cannot overflow over 64 words (at most 64 * 2 * 255 = 32640 each). */
static unsigned long
header_sum(const unsigned char *h)
{
    uint64_t acc = 0;
    for (int i = 0; i < BLOCK; i += 8) {
        uint64_t w;
        memcpy(&w, h + i, 8);
        acc += (w & 0x00FF00FF00FF00FFULL) + ((w >> 8) & 0x00FF00FF00FF00FFULL);
    }
    unsigned long sum = (unsigned long)((acc & 0xFFFF) + ((acc >> 16) & 0xFFFF) +
                                        ((acc >> 32) & 0xFFFF) + (acc >> 48));
    for (int i = 148; i < 156; i++)
        sum -= h[i];
    return sum + 8 * ' ';
}

/* 1: parsed into *f; 0: not the common case (the caller falls back); -1: an exception */
static int
parse_into(const unsigned char *h, fields *f)
{
    unsigned long sum = header_sum(h);
    if (sum == 8 * ' ')
        return 0; /* an all-zero block: the end of the archive */
    long long stored;
    if (!octal(h + 148, 8, -1, &stored) || stored != (long long)sum)
        return 0;
    unsigned char flag = h[156];
    if (flag == 'x' || flag == 'g' || flag == 'L' || flag == 'K' || flag == 'S')
        return 0;
    long long size, mode, uid, gid, mtime;
    if (!octal(h + 124, 12, 0, &size) || !octal(h + 100, 8, 0, &mode) ||
        !octal(h + 108, 8, 0, &uid) || !octal(h + 116, 8, 0, &gid) ||
        !octal(h + 136, 12, 0, &mtime))
        return 0;

    /* the name: a POSIX prefix (magic "ustar\0", not GNU's "ustar  ") joined with "/" */
    unsigned char name[256 + 1];
    Py_ssize_t nlen = cstrlen(h, 100);
    Py_ssize_t plen = 0;
    if (memcmp(h + 257, "ustar\0", 6) == 0 && h[345]) {
        plen = cstrlen(h + 345, 155);
        memcpy(name, h + 345, (size_t)plen);
        name[plen++] = '/';
    }
    memcpy(name + plen, h, (size_t)nlen);
    nlen += plen;

    /* the path: "./" dropped, slashes stripped at both ends, when nothing needs normalising */
    const unsigned char *p = name;
    Py_ssize_t n = nlen;
    int slow = flag == '1'; /* hard links: the target is vetted too */
    if (!slow) {
        if (n >= 2 && p[0] == '.' && p[1] == '/') {
            p += 2;
            n -= 2;
        }
        slow = needs_normalising(p, n);
    }
    PyObject *oname = PyUnicode_DecodeUTF8((const char *)name, nlen, "surrogateescape");
    if (oname == NULL)
        return -1;
    PyObject *opath;
    if (slow) {
        opath = Py_NewRef(Py_None);
    } else {
        while (n > 0 && p[0] == '/') {
            p++;
            n--;
        }
        while (n > 0 && p[n - 1] == '/')
            n--;
        if (p == name && n == nlen)
            opath = Py_NewRef(oname);
        else
            opath = PyUnicode_DecodeUTF8((const char *)p, n, "surrogateescape");
        if (opath == NULL) {
            Py_DECREF(oname);
            return -1;
        }
    }
    PyObject *olink;
    if (h[157]) {
        olink = PyUnicode_DecodeUTF8((const char *)h + 157, cstrlen(h + 157, 100),
                                     "surrogateescape");
        if (olink == NULL) {
            Py_DECREF(oname);
            Py_DECREF(opath);
            return -1;
        }
    } else {
        olink = PyUnicode_New(0, 0);
    }
    f->name = oname;
    f->path = opath;
    f->link = olink;
    f->flag = flag;
    f->size = size;
    f->mode = mode & 07777;
    f->uid = uid;
    f->gid = gid;
    f->mtime = mtime;
    return 1;
}

static void
release(fields *f)
{
    Py_DECREF(f->name);
    Py_DECREF(f->path);
    Py_DECREF(f->link);
}

static PyObject *
parse(const unsigned char *h)
{
    fields f;
    int r = parse_into(h, &f);
    if (r <= 0)
        return r < 0 ? NULL : Py_None;
    return Py_BuildValue("(NNiLLLLLN)", f.name, f.path, f.flag, f.size, f.mode, f.uid, f.gid,
                         f.mtime, f.link);
}

/* 1: `view` holds `buf`'s bytes (release it); 0: `buf` is no readable buffer (the caller
 * declines, and the Python walker reads it) */
static int
readable(PyObject *buf, Py_buffer *view)
{
    if (!PyObject_CheckBuffer(buf))
        return 0;
    if (PyObject_GetBuffer(buf, view, PyBUF_SIMPLE) < 0) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

static PyObject *
header(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "header(buf, pos) takes 2 arguments");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred())
        return NULL;
    PyObject *buf = args[0];
    PyObject *res;
    if (PyBytes_CheckExact(buf)) {
        Py_ssize_t len = PyBytes_GET_SIZE(buf);
        if (pos < 0 || len - pos < BLOCK)
            Py_RETURN_NONE;
        res = parse((const unsigned char *)PyBytes_AS_STRING(buf) + pos);
    } else {
        Py_buffer view;
        if (!readable(buf, &view))
            Py_RETURN_NONE;
        if (pos < 0 || view.len - pos < BLOCK) {
            PyBuffer_Release(&view);
            Py_RETURN_NONE;
        }
        res = parse((const unsigned char *)view.buf + pos);
        PyBuffer_Release(&view);
    }
    if (res == Py_None)
        Py_RETURN_NONE;
    return res;
}

#define NCOLS 10 /* names, paths, kinds, sizes, modes, uids, gids, links, mtimes, offsets */

/* The last value of an integer column and its object: consecutive entries mostly share their
 * mode, owner and mtime, so the column holds one object for a run of equal values instead of
 * a new int per entry. */
typedef struct {
    long long value;
    PyObject *obj;
} last_int;

static PyObject *
same_int(last_int *last, long long value)
{
    if (last->obj != NULL && last->value == value)
        return Py_NewRef(last->obj);
    PyObject *o = PyLong_FromLongLong(value);
    if (o != NULL) {
        Py_XSETREF(last->obj, Py_NewRef(o));
        last->value = value;
    }
    return o;
}

/* Append the entry of `f` (header at absolute offset `at`) to the columns; steals f's strings.
 * `last`: the mode, uid, gid and mtime columns' last values (see same_int). */
static int
append(PyObject **cols, fields *f, PyObject *kind, long long size, long long at, last_int *last)
{
    PyObject *v[NCOLS] = {
        f->name, f->path, Py_NewRef(kind), PyLong_FromLongLong(size),
        same_int(&last[0], f->mode), same_int(&last[1], f->uid), same_int(&last[2], f->gid),
        f->link, same_int(&last[3], f->mtime), PyLong_FromLongLong(at),
    };
    int ok = 1;
    for (int c = 0; c < NCOLS; c++) {
        if (v[c] == NULL || (ok && PyList_Append(cols[c], v[c]) < 0))
            ok = 0;
        Py_XDECREF(v[c]);
    }
    return ok ? 0 : -1;
}

/* scan(buf, pos, base, max_n, kinds, file_kind, dir_kind) -> tuple | None
 *
 * The plain entries from buf[pos:] on, as columns: (end, names, paths, kinds, sizes, modes,
 * uids, gids, links, mtimes, offsets), at most `max_n` of them. `kinds` is a tuple of 256 kinds
 * by type byte; a file whose type byte is '0' or NUL and whose name ends in "/" is `dir_kind`
 * (old v7 tars); `sizes` holds 0 for what is not `file_kind`; `offsets` are the headers'
 * absolute offsets (buffer position + `base`); `end` is the position after the last entry's
 * padded content. It stops before the first entry that is not of the common case: everything
 * `header` declines, a path that needs normalising (whiteouts, hard links, "." or "//"), a
 * volume header ('V', 'M'), content or padding past the buffer's end. The Python walker goes
 * on from there (and raises whatever error is due), so the entries are exactly its entries.
 * None when `buf` is not a readable buffer. */
static PyObject *
scan(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "scan() takes 7 arguments");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred())
        return NULL;
    long long base = PyLong_AsLongLong(args[2]);
    if (base == -1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t max_n = PyLong_AsSsize_t(args[3]);
    if (max_n == -1 && PyErr_Occurred())
        return NULL;
    PyObject *kinds = args[4], *file_kind = args[5], *dir_kind = args[6];
    if (!PyTuple_CheckExact(kinds) || PyTuple_GET_SIZE(kinds) != 256) {
        PyErr_SetString(PyExc_TypeError, "scan(): kinds must be a tuple of 256");
        return NULL;
    }
    Py_buffer view;
    if (!readable(args[0], &view))
        Py_RETURN_NONE;
    const unsigned char *data = (const unsigned char *)view.buf;
    Py_ssize_t len = view.len;
    PyObject *cols[NCOLS] = {NULL};
    last_int last[4] = {{0, NULL}, {0, NULL}, {0, NULL}, {0, NULL}};
    PyObject *res = NULL;
    for (int c = 0; c < NCOLS; c++)
        if ((cols[c] = PyList_New(0)) == NULL)
            goto done;
    for (Py_ssize_t n = 0; n < max_n && pos >= 0 && len - pos >= BLOCK; n++) {
        const unsigned char *h = data + pos;
        fields f;
        int r = parse_into(h, &f);
        if (r < 0)
            goto done;
        if (r == 0)
            break;
        int flag = f.flag;
        if (f.path == Py_None || flag == 'V' || flag == 'M') {
            release(&f);
            break;
        }
        PyObject *kind = PyTuple_GET_ITEM(kinds, flag);
        if (kind == file_kind && (flag == '0' || flag == 0)) {
            Py_ssize_t k = PyUnicode_GET_LENGTH(f.name);
            if (k > 0 && PyUnicode_READ_CHAR(f.name, k - 1) == '/')
                kind = dir_kind;
        }
        long long data_len = (flag >= '1' && flag <= '6') ? 0 : f.size;
        long long padded = data_len + ((BLOCK - data_len % BLOCK) % BLOCK);
        if (padded > (long long)(len - pos - BLOCK)) { /* cut short: the walker says how */
            release(&f);
            break;
        }
        Py_ssize_t at = pos;
        pos += BLOCK + (Py_ssize_t)padded;
#if defined(__GNUC__)
        /* the next header is usually in a page not read for a while: have its lines on the way
         * while this entry's objects are made */
        if (len - pos >= BLOCK)
            for (int line = 0; line < BLOCK; line += 64)
                __builtin_prefetch(data + pos + line);
#endif
        if (append(cols, &f, kind, kind == file_kind ? f.size : 0, (long long)at + base, last) <
            0)
            goto done;
    }
    res = PyTuple_New(1 + NCOLS);
    if (res == NULL)
        goto done;
    PyObject *end = PyLong_FromSsize_t(pos);
    if (end == NULL) {
        Py_CLEAR(res);
        goto done;
    }
    PyTuple_SET_ITEM(res, 0, end);
    for (int c = 0; c < NCOLS; c++) {
        PyTuple_SET_ITEM(res, 1 + c, cols[c]);
        cols[c] = NULL;
    }
done:
    for (int c = 0; c < NCOLS; c++)
        Py_XDECREF(cols[c]);
    for (int c = 0; c < 4; c++)
        Py_XDECREF(last[c].obj);
    PyBuffer_Release(&view);
    return res;
}

static PyMethodDef methods[] = {
    {"header", (PyCFunction)(void (*)(void))header, METH_FASTCALL,
     "header(buf, pos) -> (name, path, flag, size, mode, uid, gid, mtime, linkname) or None"},
    {"scan", (PyCFunction)(void (*)(void))scan, METH_FASTCALL,
     "scan(buf, pos, base, max_n, kinds, file_kind, dir_kind) -> (end, *columns) or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_tarhead", "The common tar header, parsed in C.", -1, methods,
};

PyMODINIT_FUNC
PyInit__tarhead(void)
{
    return PyModule_Create(&module);
}
