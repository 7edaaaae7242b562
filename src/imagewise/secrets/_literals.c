/* Which of a set of exact byte strings occur in a text: the secret scan's prefilter, in C.
 *
 * compile(literals) -> capsule
 *     `literals` is a sequence of (bytes, group) pairs, each bytes of 2 to 255 bytes and each
 *     group a number from 0 to 63.
 * find(capsule, data) -> int
 *     The bitmask of the groups with at least one literal occurring in `data` (any object with
 *     the buffer protocol).
 * probe(capsule, data, start, size, sniff) -> int
 *     One file's content inside a larger buffer (a layer read in place), in place: -1 when its
 *     first `sniff` bytes hold a NUL (a binary file, never scanned), else find() over it.
 *
 * Every secret rule whose matches all contain one of its literals is one group
 * (imagewise/secrets/rules.py): a rule whose group is not in the mask cannot match, so its
 * regex is not run. One pass over the text replaces one regex search per rule; the Python scan
 * (imagewise/secrets/detect.py) gives the same hits with or without it, which
 * tests/test_secrets_native.py holds it to on random texts.
 *
 * The pass looks at every pair of adjacent bytes: a 64 Kbit bitmap (8 KiB, in L1) says whether
 * some literal starts with that pair; only then are the literals of that pair compared.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    const unsigned char *bytes;
    unsigned char len;
    unsigned char group;
} literal;

typedef struct {
    uint8_t bitmap[65536 / 8];  /* pairs some literal starts with */
    uint32_t start[65536 + 1];  /* literals of pair p: lits[start[p] .. start[p + 1]) */
    literal *lits;
    unsigned char *storage;
    uint64_t all;               /* every group: the pass may stop once all are found */
} literal_set;

static const char *CAPSULE = "imagewise.secrets._literals.set";

static void
set_free(PyObject *capsule)
{
    literal_set *set = PyCapsule_GetPointer(capsule, CAPSULE);
    if (set != NULL) {
        PyMem_Free(set->lits);
        PyMem_Free(set->storage);
        PyMem_Free(set);
    }
}

static unsigned
pair(const unsigned char *p)
{
    return (unsigned)p[0] | ((unsigned)p[1] << 8);
}

static PyObject *
compile(PyObject *self, PyObject *arg)
{
    PyObject *seq = PySequence_Fast(arg, "compile() takes a sequence of (bytes, group) pairs");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    literal_set *set = PyMem_Calloc(1, sizeof(literal_set));
    literal *tmp = PyMem_Calloc(n ? n : 1, sizeof(literal));
    literal *lits = PyMem_Calloc(n ? n : 1, sizeof(literal));
    unsigned char *storage = PyMem_Malloc(n * 255 + 1);
    uint32_t *count = PyMem_Calloc(65536, sizeof(uint32_t));
    if (set == NULL || tmp == NULL || lits == NULL || storage == NULL || count == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    unsigned char *at = storage;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        const char *s;
        Py_ssize_t len;
        int group;
        if (!PyTuple_Check(item) || !PyArg_ParseTuple(item, "y#i", &s, &len, &group))
            goto bad;
        if (len < 2 || len > 255 || group < 0 || group > 63)
            goto bad;
        memcpy(at, s, len);
        tmp[i].bytes = at;
        tmp[i].len = (unsigned char)len;
        tmp[i].group = (unsigned char)group;
        at += len;
        unsigned p = pair(tmp[i].bytes);
        count[p]++;
        set->bitmap[p >> 3] |= (uint8_t)(1u << (p & 7));
        set->all |= (uint64_t)1 << group;
    }
    uint32_t total = 0;
    for (unsigned p = 0; p < 65536; p++) {
        set->start[p] = total;
        total += count[p];
        count[p] = set->start[p];  /* now: where the next literal of pair p goes */
    }
    set->start[65536] = total;
    for (Py_ssize_t i = 0; i < n; i++)
        lits[count[pair(tmp[i].bytes)]++] = tmp[i];
    PyMem_Free(tmp);
    PyMem_Free(count);
    Py_DECREF(seq);
    set->lits = lits;
    set->storage = storage;
    PyObject *capsule = PyCapsule_New(set, CAPSULE, set_free);
    if (capsule == NULL) {
        PyMem_Free(lits);
        PyMem_Free(storage);
        PyMem_Free(set);
    }
    return capsule;
bad:
    if (!PyErr_Occurred() || PyErr_ExceptionMatches(PyExc_TypeError)) {
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError,
                        "compile(): each literal is (bytes of 2 to 255 bytes, group 0 to 63)");
    }
fail:
    PyMem_Free(set);
    PyMem_Free(tmp);
    PyMem_Free(lits);
    PyMem_Free(storage);
    PyMem_Free(count);
    Py_DECREF(seq);
    return NULL;
}

static uint64_t
scan(const literal_set *set, const unsigned char *d, Py_ssize_t n)
{
    uint64_t found = 0;
    const uint64_t all = set->all;
    for (Py_ssize_t i = 0; i + 1 < n; i++) {
        unsigned p = pair(d + i);
        if (!(set->bitmap[p >> 3] & (1u << (p & 7))))
            continue;
        for (uint32_t k = set->start[p]; k < set->start[p + 1]; k++) {
            const literal *lit = &set->lits[k];
            if ((found >> lit->group) & 1)
                continue;
            if (lit->len <= n - i && memcmp(d + i, lit->bytes, lit->len) == 0)
                found |= (uint64_t)1 << lit->group;
        }
        if (found == all)
            break;
    }
    return found;
}

/* the GIL only goes for long texts: taking it back can wait for another thread's turn */
static uint64_t
scan_released(const literal_set *set, const unsigned char *d, Py_ssize_t n)
{
    if (n < (1 << 20))
        return scan(set, d, n);
    uint64_t found;
    Py_BEGIN_ALLOW_THREADS
    found = scan(set, d, n);
    Py_END_ALLOW_THREADS
    return found;
}

static PyObject *
find(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "find(set, data) takes two arguments");
        return NULL;
    }
    literal_set *set = PyCapsule_GetPointer(args[0], CAPSULE);
    if (set == NULL)
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    uint64_t found = scan_released(set, view.buf, view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLongLong(found);
}

static PyObject *
probe(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "probe(set, data, start, size, sniff) takes five arguments");
        return NULL;
    }
    literal_set *set = PyCapsule_GetPointer(args[0], CAPSULE);
    if (set == NULL)
        return NULL;
    Py_ssize_t start = PyLong_AsSsize_t(args[2]), size = PyLong_AsSsize_t(args[3]);
    Py_ssize_t sniff = PyLong_AsSsize_t(args[4]);
    if ((start == -1 || size == -1 || sniff == -1) && PyErr_Occurred())
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (start < 0 || size < 0 || sniff < 0 || start > view.len || size > view.len - start) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "probe(): start and size must lie within data");
        return NULL;
    }
    const unsigned char *d = (const unsigned char *)view.buf + start;
    PyObject *out;
    if (memchr(d, 0, size < sniff ? size : sniff) != NULL)
        out = PyLong_FromLong(-1);
    else
        out = PyLong_FromUnsignedLongLong(scan_released(set, d, size));
    PyBuffer_Release(&view);
    return out;
}

static PyMethodDef methods[] = {
    {"compile", (PyCFunction)compile, METH_O,
     "compile(literals) -> set: literals as (bytes, group) pairs (2-255 bytes, group 0-63)"},
    {"find", (PyCFunction)(void (*)(void))find, METH_FASTCALL,
     "find(set, data) -> int: the bitmask of the groups with a literal occurring in data"},
    {"probe", (PyCFunction)(void (*)(void))probe, METH_FASTCALL,
     "probe(set, data, start, size, sniff) -> int: -1 when data[start:start + min(size, sniff)]"
     " holds a NUL byte, else find(set, data[start:start + size]) without a copy"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_literals", "Which of a set of byte strings occur in a text.", -1,
    methods,
};

PyMODINIT_FUNC
PyInit__literals(void)
{
    return PyModule_Create(&module);
}
