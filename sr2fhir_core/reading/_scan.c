/*
 * sr2fhir_core.reading._scan: the element-header walk of `fast_parser` in C.
 *
 * A `Scanner` walks one DICOM data set in explicit or implicit VR little endian (PS3.5 chapter 7) and
 * returns a `RawDataSet` equal to the one the pure-Python walker in `fast_parser.py` returns: a dict from
 * int tag to the value's bytes, or to a list of item dicts for a sequence, for the tags of `tags.READ_VR`
 * only. Everything else is skipped by its length. Equal, not identical: within one scan, equal short values
 * are one bytes object and equal code sequence items one dict (the reader only reads them), and the
 * containers are not tracked by the cyclic garbage collector; each is explained where it is done.
 *
 * The walk mirrors the Python one check for check and in the same order, so that a malformed input gets
 * the same signal from both: `FastReaderUnsupported` (the caller then asks pydicom) or the `SRRejected`
 * that `fast_parser._corrupt()` builds (truncation, or a sequence holding something other than items, where
 * pydicom reads eagerly). The Python walker is
 * the specification; tests/test_reader_differential.py compares the two on every input it has.
 *
 * No table is duplicated here: the wanted tags with their VRs, the explicit VR header size of every VR and
 * the VRs of encapsulated pixel data and the code sequences come from Python when the Scanner is built. Only the structure of the
 * encoding itself is fixed here (item and delimiter tags, the undefined length, the SQ VR).
 *
 * Safety: the input is read through the buffer protocol without a copy and is never read past its end.
 * Every length is checked against the end of its container (itself within the buffer) before a value is
 * sliced, with 64-bit arithmetic so that a 32-bit length cannot wrap a position. Nesting is bounded by the
 * same depth as the Python walker, which also bounds the C recursion. Values are copied out as bytes only
 * for wanted tags, and nothing is built for sequences that are not wanted.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* --- the encoding (PS3.5 7.1, 7.5) ------------------------------------------------------------------- */

#define TAG_ITEM 0xFFFEE000u
#define TAG_ITEM_DELIMITATION_ITEM 0xFFFEE00Du
#define TAG_SEQUENCE_DELIMITATION_ITEM 0xFFFEE0DDu
#define TAG_SPECIFIC_CHARACTER_SET 0x00080005u /* checked in every data set: see check_charset */
#define GROUP_DELIMITERS 0xFFFEu
#define UNDEFINED_LENGTH 0xFFFFFFFFu
#define VR_CODE(a, b) ((uint16_t)((uint8_t)(a) | (uint8_t)(b) << 8)) /* as int.from_bytes(vr, "little") */
#define VR_SQ VR_CODE('S', 'Q')

/* VR codes are two upper-case letters: a 26 x 26 table indexes them directly. */
#define VR_LETTERS 26
#define VR_SLOTS (VR_LETTERS * VR_LETTERS)

/* Wanted tags: open addressing, linear probing, at most half full. */
#define TAG_SLOTS 512
#define TAG_SLOT_BITS 9

static inline uint16_t
read_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t
read_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* --- the Scanner object ------------------------------------------------------------------------------ */

typedef struct {
    PyObject *key; /* the int tag object from READ_VR, reused as the dict key; NULL = empty slot */
    uint32_t tag;
    uint16_t vr;
    uint8_t shared_items; /* a sequence whose equal items may be one dict (see SharedItems) */
} WantedTag;

typedef struct {
    PyObject_HEAD
    WantedTag wanted[TAG_SLOTS];
    uint8_t header_size[VR_SLOTS]; /* explicit VR header size (8 or 12); 0 = not a VR */
    uint8_t encapsulated[VR_SLOTS]; /* 1 for the VRs of encapsulated pixel data (OB, OW) */
    PyObject *unsupported;          /* FastReaderUnsupported */
    PyObject *corrupt;              /* () -> SRRejected(CORRUPT, ...) */
    PyObject *is_sequence_tag;      /* (tag, data, pos, end) -> bool */
    PyObject *check_charset;        /* (value, eager) -> None, or raises */
    int max_depth;
    int scans; /* scans in progress: the callbacks run Python code, which must not re-initialise the tables */
} Scanner;

static inline int
vr_slot(uint16_t vr)
{
    unsigned first = (unsigned)(vr & 0xFF) - 'A';
    unsigned second = (unsigned)(vr >> 8) - 'A';
    if (first >= VR_LETTERS || second >= VR_LETTERS) {
        return -1;
    }
    return (int)(first * VR_LETTERS + second);
}

/* pydicom's test of the first element of a data set for an explicit VR (filereader._is_implicit_vr). */
static inline int
vr_letters(uint8_t first, uint8_t second)
{
    return 0x40 < first && first < 0x5B && 0x40 < second && second < 0x5B;
}

/* pydicom's test of any other element's VR bytes: b"AA" <= vr <= b"ZZ", byte-wise. Outside it an element is
 * read as implicit VR; inside it an unknown VR has a 2-byte length. */
static inline int
vr_in_letter_range(uint16_t vr)
{
    uint16_t big_endian = (uint16_t)((vr & 0xFF) << 8 | vr >> 8);
    return 0x4141 <= big_endian && big_endian <= 0x5A5A;
}

static inline unsigned
tag_slot(uint32_t tag)
{
    return (unsigned)((tag * 2654435761u) >> (32 - TAG_SLOT_BITS)); /* Fibonacci hashing */
}

static inline const WantedTag *
find_wanted(const Scanner *scanner, uint32_t tag)
{
    unsigned slot = tag_slot(tag);
    for (;;) {
        const WantedTag *entry = &scanner->wanted[slot];
        if (entry->key == NULL) {
            return NULL;
        }
        if (entry->tag == tag) {
            return entry;
        }
        slot = (slot + 1) & (TAG_SLOTS - 1);
    }
}

static int
vr_code_from_key(PyObject *key, const char *table, uint16_t *vr)
{
    long code = PyLong_AsLong(key);
    if (code == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (code < 0 || code > 0xFFFF || vr_slot((uint16_t)code) < 0) {
        PyErr_Format(PyExc_ValueError, "%s: %R is not the code of a VR", table, key);
        return -1;
    }
    *vr = (uint16_t)code;
    return 0;
}

static int
load_wanted(Scanner *self, PyObject *read_vr)
{
    PyObject *key, *value;
    Py_ssize_t index = 0, count = 0;
    if (!PyDict_Check(read_vr)) {
        PyErr_SetString(PyExc_TypeError, "read_vr must be a dict of int tag -> 2-byte VR");
        return -1;
    }
    while (PyDict_Next(read_vr, &index, &key, &value)) {
        if (!PyLong_Check(key) || !PyBytes_Check(value) || PyBytes_GET_SIZE(value) != 2) {
            PyErr_SetString(PyExc_TypeError, "read_vr must be a dict of int tag -> 2-byte VR");
            return -1;
        }
        unsigned long tag = PyLong_AsUnsignedLong(key);
        if (tag == (unsigned long)-1 && PyErr_Occurred()) {
            return -1;
        }
        if (tag > 0xFFFFFFFFul) {
            PyErr_Format(PyExc_ValueError, "read_vr: %R is not a 32-bit tag", key);
            return -1;
        }
        if (++count > TAG_SLOTS / 2) {
            PyErr_SetString(PyExc_ValueError, "read_vr: more tags than the scanner's table holds");
            return -1;
        }
        const char *letters = PyBytes_AS_STRING(value);
        uint16_t vr = VR_CODE(letters[0], letters[1]);
        unsigned slot = tag_slot((uint32_t)tag);
        while (self->wanted[slot].key != NULL) {
            slot = (slot + 1) & (TAG_SLOTS - 1); /* dict keys are distinct: no duplicate to meet */
        }
        Py_INCREF(key);
        self->wanted[slot].key = key;
        self->wanted[slot].tag = (uint32_t)tag;
        self->wanted[slot].vr = vr;
        self->wanted[slot].shared_items = 0;
    }
    return 0;
}

static int
load_header_sizes(Scanner *self, PyObject *sizes)
{
    PyObject *key, *value;
    Py_ssize_t index = 0;
    uint16_t vr;
    if (!PyDict_Check(sizes)) {
        PyErr_SetString(PyExc_TypeError, "header_sizes must be a dict of VR code -> 8 or 12");
        return -1;
    }
    while (PyDict_Next(sizes, &index, &key, &value)) {
        if (vr_code_from_key(key, "header_sizes", &vr) < 0) {
            return -1;
        }
        long size = PyLong_AsLong(value);
        if (size == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (size != 8 && size != 12) {
            PyErr_SetString(PyExc_ValueError, "header_sizes: an explicit VR header is 8 or 12 bytes");
            return -1;
        }
        self->header_size[vr_slot(vr)] = (uint8_t)size;
    }
    return 0;
}

static int
load_encapsulated(Scanner *self, PyObject *vrs)
{
    PyObject *iterator = PyObject_GetIter(vrs), *key;
    uint16_t vr;
    if (iterator == NULL) {
        return -1;
    }
    while ((key = PyIter_Next(iterator)) != NULL) {
        int failed = vr_code_from_key(key, "encapsulated_vrs", &vr);
        Py_DECREF(key);
        if (failed) {
            Py_DECREF(iterator);
            return -1;
        }
        self->encapsulated[vr_slot(vr)] = 1;
    }
    Py_DECREF(iterator);
    return PyErr_Occurred() ? -1 : 0;
}

static int
load_shared_items(Scanner *self, PyObject *tags)
{
    PyObject *iterator = PyObject_GetIter(tags), *key;
    if (iterator == NULL) {
        return -1;
    }
    while ((key = PyIter_Next(iterator)) != NULL) {
        unsigned long tag = PyLong_AsUnsignedLong(key);
        Py_DECREF(key);
        if (tag == (unsigned long)-1 && PyErr_Occurred()) {
            break;
        }
        WantedTag *wanted = tag > 0xFFFFFFFFul ? NULL : (WantedTag *)find_wanted(self, (uint32_t)tag);
        if (wanted == NULL || wanted->vr != VR_SQ) {
            PyErr_SetString(PyExc_ValueError, "shared_item_sequences: every tag must be a sequence in read_vr");
            break;
        }
        wanted->shared_items = 1;
    }
    Py_DECREF(iterator);
    return PyErr_Occurred() ? -1 : 0;
}

static int
Scanner_traverse(Scanner *self, visitproc visit, void *arg)
{
    Py_VISIT(self->unsupported);
    Py_VISIT(self->corrupt);
    Py_VISIT(self->is_sequence_tag);
    Py_VISIT(self->check_charset);
    return 0;
}

static int
Scanner_clear(Scanner *self)
{
    for (int slot = 0; slot < TAG_SLOTS; slot++) {
        Py_CLEAR(self->wanted[slot].key);
    }
    Py_CLEAR(self->unsupported);
    Py_CLEAR(self->corrupt);
    Py_CLEAR(self->is_sequence_tag);
    Py_CLEAR(self->check_charset);
    return 0;
}

static void
Scanner_dealloc(Scanner *self)
{
    PyObject_GC_UnTrack(self);
    Scanner_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
Scanner_init(Scanner *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {
        "read_vr", "header_sizes", "encapsulated_vrs", "shared_item_sequences", "unsupported", "corrupt",
        "is_sequence_tag", "check_charset", "max_depth", NULL,
    };
    PyObject *read_vr, *header_sizes, *encapsulated_vrs, *shared_item_sequences, *unsupported, *corrupt,
        *is_sequence_tag, *check_charset;
    int max_depth;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$OOOOOOOOi:Scanner", keywords, &read_vr, &header_sizes,
                                     &encapsulated_vrs, &shared_item_sequences, &unsupported, &corrupt,
                                     &is_sequence_tag, &check_charset, &max_depth)) {
        return -1;
    }
    if (!PyExceptionClass_Check(unsupported)) {
        PyErr_SetString(PyExc_TypeError, "unsupported must be an exception class");
        return -1;
    }
    if (!PyCallable_Check(corrupt) || !PyCallable_Check(is_sequence_tag) || !PyCallable_Check(check_charset)) {
        PyErr_SetString(PyExc_TypeError, "corrupt, is_sequence_tag and check_charset must be callable");
        return -1;
    }
    if (self->scans > 0) {
        PyErr_SetString(PyExc_RuntimeError, "Scanner re-initialised during a scan");
        return -1;
    }
    if (max_depth < 1 || max_depth > 1000) {
        /* The walk recurses once per data set and sequence: the bound is also the C stack's. */
        PyErr_SetString(PyExc_ValueError, "max_depth must be between 1 and 1000");
        return -1;
    }
    Scanner_clear(self); /* __init__ may be called again */
    memset(self->header_size, 0, sizeof self->header_size);
    memset(self->encapsulated, 0, sizeof self->encapsulated);
    if (load_wanted(self, read_vr) < 0 || load_header_sizes(self, header_sizes) < 0 ||
        load_encapsulated(self, encapsulated_vrs) < 0 || load_shared_items(self, shared_item_sequences) < 0) {
        Scanner_clear(self);
        return -1;
    }
    Py_INCREF(unsupported);
    self->unsupported = unsupported;
    Py_INCREF(corrupt);
    self->corrupt = corrupt;
    Py_INCREF(is_sequence_tag);
    self->is_sequence_tag = is_sequence_tag;
    Py_INCREF(check_charset);
    self->check_charset = check_charset;
    self->max_depth = max_depth;
    return 0;
}

/* --- one walk ---------------------------------------------------------------------------------------- */

/*
 * Short values repeat across a report: Relationship and Value Types, and the Code Value, Coding Scheme
 * Designator and Code Meaning of the same few concepts and units in every measurement. One scan makes one
 * bytes object per distinct short value and hands out new references to it: fewer allocations, and the
 * reader's dict lookups on these values hash each object once. The table lives for one scan only.
 */
#define INTERN_MAX_LENGTH 64
#define INTERN_MIN_CAPACITY 256

typedef struct {
    PyObject **slots; /* bytes objects; NULL = empty. Open addressing, linear probing, at most half full. */
    size_t capacity;  /* a power of two, or 0 before the first value */
    size_t used;
} Interned;

/*
 * Items of code sequences (Concept Name, Concept, Measurement Units, ...) repeat even more: a radiomics
 * report has some 8,600 of them for a few hundred distinct codes. Within one scan, items of these sequences
 * whose bytes are equal (from their Item tag to their end) are one dict. Parsing the same bytes always
 * gives the same dict, wherever they are: the checks that could depend on the context (the depth, the end
 * of the enclosing value) are made again on every occurrence by a walk that builds nothing, before the
 * table is asked. The raw data set becomes a DAG of equal-by-value dicts: the reader only reads it.
 */
#define SHARED_ITEM_MAX_LENGTH 1024

typedef struct {
    const uint8_t *span; /* into the scanned buffer, alive for the scan */
    Py_ssize_t length;
    uint32_t hash;
    PyObject *item; /* NULL = empty slot */
} SharedItem;

typedef struct {
    SharedItem *slots; /* open addressing, linear probing, at most half full */
    size_t capacity;
    size_t used;
} SharedItems;

typedef struct {
    const Scanner *scanner;
    PyObject *data; /* the input object, for the is_sequence_tag callback */
    const uint8_t *buf;
    Py_ssize_t size;
    Interned *interned;
    SharedItems *shared;
} Walk;

/* The shared item for these bytes (a borrowed reference), or NULL (no exception). */
static PyObject *
find_shared(const SharedItems *table, const uint8_t *span, Py_ssize_t length, uint32_t hash)
{
    if (table->capacity == 0) {
        return NULL;
    }
    size_t mask = table->capacity - 1;
    for (size_t slot = hash & mask; table->slots[slot].item != NULL; slot = (slot + 1) & mask) {
        const SharedItem *entry = &table->slots[slot];
        if (entry->hash == hash && entry->length == length && memcmp(entry->span, span, (size_t)length) == 0) {
            return entry->item;
        }
    }
    return NULL;
}

/* Remember `item` (a new reference taken) for these bytes; -1 with an exception. */
static int
remember_shared(SharedItems *table, const uint8_t *span, Py_ssize_t length, uint32_t hash, PyObject *item)
{
    if (2 * (table->used + 1) > table->capacity) {
        size_t capacity = table->capacity ? table->capacity * 2 : INTERN_MIN_CAPACITY;
        SharedItem *slots = PyMem_Calloc(capacity, sizeof(SharedItem));
        if (slots == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (size_t old = 0; old < table->capacity; old++) {
            if (table->slots[old].item != NULL) {
                size_t slot = table->slots[old].hash & (capacity - 1);
                while (slots[slot].item != NULL) {
                    slot = (slot + 1) & (capacity - 1);
                }
                slots[slot] = table->slots[old];
            }
        }
        PyMem_Free(table->slots);
        table->slots = slots;
        table->capacity = capacity;
    }
    size_t mask = table->capacity - 1, slot = hash & mask;
    while (table->slots[slot].item != NULL) {
        slot = (slot + 1) & mask;
    }
    Py_INCREF(item);
    table->slots[slot] = (SharedItem){span, length, hash, item};
    table->used++;
    return 0;
}

static void
shared_clear(SharedItems *table)
{
    for (size_t slot = 0; slot < table->capacity; slot++) {
        Py_XDECREF(table->slots[slot].item);
    }
    PyMem_Free(table->slots);
    table->slots = NULL;
    table->capacity = table->used = 0;
}

static inline uint32_t
fnv1a(const uint8_t *bytes, Py_ssize_t length)
{
    uint32_t hash = 2166136261u;
    for (Py_ssize_t index = 0; index < length; index++) {
        hash = (hash ^ bytes[index]) * 16777619u;
    }
    return hash;
}

static int
intern_grow(Interned *table)
{
    size_t capacity = table->capacity ? table->capacity * 2 : INTERN_MIN_CAPACITY;
    PyObject **slots = PyMem_Calloc(capacity, sizeof(PyObject *));
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t old = 0; old < table->capacity; old++) {
        PyObject *value = table->slots[old];
        if (value != NULL) {
            size_t slot = fnv1a((const uint8_t *)PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value)) & (capacity - 1);
            while (slots[slot] != NULL) {
                slot = (slot + 1) & (capacity - 1);
            }
            slots[slot] = value;
        }
    }
    PyMem_Free(table->slots);
    table->slots = slots;
    table->capacity = capacity;
    return 0;
}

static void
intern_clear(Interned *table)
{
    for (size_t slot = 0; slot < table->capacity; slot++) {
        Py_XDECREF(table->slots[slot]);
    }
    PyMem_Free(table->slots);
    table->slots = NULL;
    table->capacity = table->used = 0;
}

/* A new reference to a bytes object holding `length` bytes at `value`; NULL with an exception. */
static PyObject *
value_bytes(const Walk *walk, const uint8_t *value, Py_ssize_t length)
{
    Interned *table = walk->interned;
    if (length > INTERN_MAX_LENGTH) {
        return PyBytes_FromStringAndSize((const char *)value, length);
    }
    if (2 * (table->used + 1) > table->capacity && intern_grow(table) < 0) {
        return NULL;
    }
    size_t mask = table->capacity - 1;
    size_t slot = fnv1a(value, length) & mask;
    PyObject *candidate;
    while ((candidate = table->slots[slot]) != NULL) {
        if (PyBytes_GET_SIZE(candidate) == length && memcmp(PyBytes_AS_STRING(candidate), value, (size_t)length) == 0) {
            Py_INCREF(candidate);
            return candidate;
        }
        slot = (slot + 1) & mask;
    }
    PyObject *bytes = PyBytes_FromStringAndSize((const char *)value, length);
    if (bytes == NULL) {
        return NULL;
    }
    Py_INCREF(bytes); /* the table's reference */
    table->slots[slot] = bytes;
    table->used++;
    return bytes;
}

/* Each of these sets an exception and returns -1, for `return fail_...(...)` at the point of failure. */

static int
fail_unsupported(const Walk *walk, const char *why)
{
    PyErr_SetString(walk->scanner->unsupported, why);
    return -1;
}

/* `why` NULL: the default reason (truncation). */
static int
fail_corrupt(const Walk *walk, const char *why)
{
    PyObject *exception;
    if (why == NULL) {
        exception = PyObject_CallNoArgs(walk->scanner->corrupt);
    }
    else {
        PyObject *text = PyUnicode_FromString(why);
        if (text == NULL) {
            return -1;
        }
        exception = PyObject_CallOneArg(walk->scanner->corrupt, text);
        Py_DECREF(text);
    }
    if (exception == NULL) {
        return -1;
    }
    if (PyExceptionInstance_Check(exception)) {
        PyErr_SetObject((PyObject *)Py_TYPE(exception), exception);
    }
    else {
        PyErr_SetString(PyExc_TypeError, "corrupt() must return an exception");
    }
    Py_DECREF(exception);
    return -1;
}

/* fast_parser._overrun: an element or item needs bytes up to `needed` that its container does not have.
 * Truncation (corrupt) only where pydicom reads the bytes eagerly and the file really ends first. */
static int
fail_overrun(const Walk *walk, uint64_t needed, int eager)
{
    if (eager && needed > (uint64_t)walk->size) {
        return fail_corrupt(walk, NULL);
    }
    return fail_unsupported(walk, "length overruns its enclosing item or sequence");
}

/* fast_parser._not_an_item: a sequence holds something other than an item. */
static int
fail_not_an_item(const Walk *walk, int eager)
{
    if (eager) {
        return fail_corrupt(walk, "a sequence holds something other than an item");
    }
    return fail_unsupported(walk,
                            "a sequence holds something other than an item, in a sequence pydicom parses on demand");
}

/* fast_parser._check_charset on a Specific Character Set value, met in any data set (kept or not): pydicom
 * converts the value of every data set it parses and fails the parse when it cannot. 0, or -1 with the
 * exception the callback raised. Rare (one element per data set at most), so the verdict stays in Python. */
static int
check_charset(const Walk *walk, const uint8_t *value, Py_ssize_t length, int eager)
{
    PyObject *raw = PyBytes_FromStringAndSize((const char *)value, length);
    if (raw == NULL) {
        return -1;
    }
    PyObject *result = PyObject_CallFunction(walk->scanner->check_charset, "Oi", raw, eager);
    Py_DECREF(raw);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

/*
 * The raw data set is a tree (dicts of bytes and of lists of dicts) that nothing makes cyclic before it is
 * dropped, so its containers are kept out of the cyclic garbage collector's sight: a radiomics report has
 * some 29,000 of them, and tracked, every collection their own allocations (and the content tree's) trigger
 * would traverse them again. A list is untracked when made; a dict once it is complete (CPython tracks a
 * dict when a container is stored in it, and nothing is stored in it afterwards).
 */
static PyObject *
new_sequence(void)
{
    PyObject *items = PyList_New(0);
    if (items != NULL) {
        PyObject_GC_UnTrack(items);
    }
    return items;
}

static void
untrack_dataset(PyObject *dataset)
{
    if (dataset != NULL) {
        PyObject_GC_UnTrack(dataset); /* a no-op for a dict that holds no container */
    }
}

/* Store a new reference under a wanted tag; steals `value`. */
static int
store(PyObject *dataset, const WantedTag *wanted, PyObject *value)
{
    if (value == NULL) {
        return -1;
    }
    int result = PyDict_SetItem(dataset, wanted->key, value);
    Py_DECREF(value);
    return result;
}

/* Append a new item data set to its sequence, or drop it when the sequence is not kept; steals `item`. */
static int
append_item(PyObject *items, PyObject *item)
{
    if (item == NULL) {
        return 0;
    }
    int result = PyList_Append(items, item);
    Py_DECREF(item);
    return result;
}

/* Encapsulated pixel data (PS3.5 A.4) that is not kept: fragment items, then a Sequence Delimitation Item. */
static int
skip_encapsulated(const Walk *walk, Py_ssize_t *pos_io, Py_ssize_t end)
{
    const uint8_t *buf = walk->buf;
    Py_ssize_t pos = *pos_io;
    while (pos + 8 <= end) {
        uint32_t tag = (uint32_t)read_u16(buf + pos) << 16 | read_u16(buf + pos + 2);
        uint32_t length = read_u32(buf + pos + 4);
        pos += 8;
        if (tag == TAG_SEQUENCE_DELIMITATION_ITEM) {
            *pos_io = pos;
            return 0;
        }
        if (tag != TAG_ITEM || length == UNDEFINED_LENGTH || (uint64_t)pos + length > (uint64_t)end) {
            break;
        }
        pos += (Py_ssize_t)length;
    }
    /* pydicom falls back to a byte search for the delimiter here; leave such files to it. */
    return fail_unsupported(walk, "encapsulated pixel data that is not well formed");
}

/* An undefined-length element this reader does not keep: a sequence or not, decided in Python
 * (fast_parser._is_sequence_tag, from pydicom's data dictionary). 1, 0, or -1 with an exception. */
static int
is_sequence_tag(const Walk *walk, uint32_t tag, Py_ssize_t pos, Py_ssize_t end)
{
    PyObject *verdict =
        PyObject_CallFunction(walk->scanner->is_sequence_tag, "kOnn", (unsigned long)tag, walk->data, pos, end);
    if (verdict == NULL) {
        return -1;
    }
    int result = PyObject_IsTrue(verdict);
    Py_DECREF(verdict);
    return result;
}

/* explicit_dataset or implicit_dataset: one data set from *pos to `end` (or its delimiter). */
typedef int (*DatasetWalker)(const Walk *, Py_ssize_t *, Py_ssize_t, int, int, int, PyObject *);

/*
 * The data set of one item of a kept sequence, from *pos_io (after its Item header at `item_start`): a new
 * reference in *item_out. In a sequence of shared items (`share`), the item is first walked without building
 * anything, which makes every check of this occurrence and finds its end; equal bytes seen before give the
 * dict they gave then.
 */
static int
walk_item(const Walk *walk, DatasetWalker walk_dataset, Py_ssize_t item_start, Py_ssize_t *pos_io, Py_ssize_t end,
          int delimited, int eager, int depth, int share, PyObject **item_out)
{
    const uint8_t *span = walk->buf + item_start;
    Py_ssize_t length = 0;
    uint32_t hash = 0;
    PyObject *item;
    *item_out = NULL;
    if (share) {
        Py_ssize_t span_end = *pos_io;
        if (walk_dataset(walk, &span_end, end, delimited, eager, depth, NULL) < 0) {
            return -1;
        }
        length = span_end - item_start;
        share = length <= SHARED_ITEM_MAX_LENGTH;
        if (share) {
            hash = fnv1a(span, length);
            if ((item = find_shared(walk->shared, span, length, hash)) != NULL) {
                Py_INCREF(item);
                *item_out = item;
                *pos_io = span_end;
                return 0;
            }
        }
    }
    if ((item = PyDict_New()) == NULL) {
        return -1;
    }
    if (walk_dataset(walk, pos_io, end, delimited, eager, depth, item) < 0 ||
        (share && remember_shared(walk->shared, span, length, hash, item) < 0)) {
        Py_DECREF(item);
        return -1;
    }
    *item_out = item;
    return 0;
}

/*
 * Explicit VR: `explicit_dataset` walks one data set from *pos to `end`, or to its Item Delimitation Item
 * when `delimited`; `explicit_sequence` walks the items of one sequence value. `dataset` / `items` receive
 * what is kept, or are NULL while walking a sequence that is not kept (checked the same, nothing built).
 * `eager`: pydicom reads these bytes from the file at load time (the top level, and undefined-length
 * sequences in it), where a short read is truncation. `depth`: sequences enclosing this one.
 */
static int explicit_sequence(const Walk *, Py_ssize_t *, Py_ssize_t, int, int, int, PyObject *, int);

static int
explicit_dataset(const Walk *walk, Py_ssize_t *pos_io, Py_ssize_t end, int delimited, int eager, int depth,
                 PyObject *dataset)
{
    const Scanner *scanner = walk->scanner;
    const uint8_t *buf = walk->buf;
    Py_ssize_t pos = *pos_io;
    int64_t last_tag = -1;
    for (;;) {
        if (pos >= end) {
            if (delimited) {
                return fail_overrun(walk, (uint64_t)end + 8, eager);
            }
            break;
        }
        if (pos + 8 > walk->size) {
            return fail_overrun(walk, (uint64_t)pos + 8, eager);
        }
        /* A header that crosses `end` but not the end of the data fails below on its value's length. */
        uint16_t group = read_u16(buf + pos);
        uint32_t tag = (uint32_t)group << 16 | read_u16(buf + pos + 2);
        uint16_t vr = read_u16(buf + pos + 4);
        uint32_t length = read_u16(buf + pos + 6);
        if (group == GROUP_DELIMITERS) {
            if (pos + 8 > end) {
                return fail_overrun(walk, (uint64_t)pos + 8, eager);
            }
            if (delimited && tag == TAG_ITEM_DELIMITATION_ITEM) {
                /* pydicom ends the item here whatever the length, read as explicit VR: the header's low
                 * length bytes read as a long VR take 4 more bytes. */
                int slot = vr_slot(vr);
                if (slot >= 0 && scanner->header_size[slot] == 12) {
                    if (pos + 12 > end) {
                        return fail_overrun(walk, (uint64_t)pos + 12, eager);
                    }
                    pos += 4;
                }
                pos += 8;
                break;
            }
            if (tag == TAG_ITEM_DELIMITATION_ITEM && !delimited && depth == 0) {
                /* pydicom ends the top-level data set at an Item Delimitation Item and reads nothing after it;
                 * it reads the header as explicit VR first, with 4 more bytes after a long VR. */
                int slot = vr_slot(vr);
                if (slot >= 0 && scanner->header_size[slot] == 12 && pos + 12 > end) {
                    return fail_overrun(walk, (uint64_t)pos + 12, eager);
                }
                pos = end;
                break;
            }
            if (tag == TAG_ITEM_DELIMITATION_ITEM) {
                /* It ends a defined-length item early for pydicom, which then reads its next item from there. */
                return fail_unsupported(walk, "Item Delimitation Item inside a defined-length item");
            }
            /* Any other (FFFE,xxxx) tag is an element like any other for pydicom, and so it is here. */
        }
        if (tag == TAG_SPECIFIC_CHARACTER_SET && last_tag >= (int64_t)tag) {
            /* pydicom reads undefined-length sequences met before a later one with the character set before. */
            return fail_unsupported(walk, "Specific Character Set out of order or repeated");
        }
        if ((int64_t)tag > last_tag) {
            last_tag = tag;
        }
        /* A tag out of order or repeated is read as pydicom does: its last occurrence is the element. */
        int slot = vr_slot(vr);
        int header_size = slot < 0 ? 0 : scanner->header_size[slot];
        int implicit_element = 0;
        if (header_size == 8) {
            pos += 8;
        }
        else if (header_size == 12) {
            if (pos + 12 > end) {
                return fail_overrun(walk, (uint64_t)pos + 12, eager);
            }
            length = read_u32(buf + pos + 8);
            pos += 12;
        }
        else if (!vr_in_letter_range(vr)) {
            /* No VR letters: pydicom reads this element as implicit VR (a 4-byte length after the tag). */
            length = read_u32(buf + pos + 4);
            pos += 8;
            implicit_element = 1;
        }
        else {
            /* A VR pydicom does not know has a 2-byte length, and fails only when its value is converted. */
            if (find_wanted(scanner, tag) != NULL) {
                return fail_unsupported(walk, "unknown VR");
            }
            pos += 8;
        }
        const WantedTag *wanted = find_wanted(scanner, tag);
        int sequence;
        if (implicit_element) {
            sequence = wanted != NULL && wanted->vr == VR_SQ;
            if (wanted == NULL && length == UNDEFINED_LENGTH && (sequence = is_sequence_tag(walk, tag, pos, end)) < 0) {
                return -1;
            }
        }
        else {
            sequence = vr == VR_SQ;
            if (sequence && wanted != NULL && wanted->vr != VR_SQ) {
                return fail_unsupported(walk, "VR differs from the data dictionary");
            }
        }
        if (sequence && (wanted != NULL || length == UNDEFINED_LENGTH)) {
            if (depth >= scanner->max_depth) {
                return fail_unsupported(walk, "nested too deeply");
            }
            Py_ssize_t sequence_end = end;
            int sequence_delimited = 1, sequence_eager = eager;
            if (length != UNDEFINED_LENGTH) {
                uint64_t value_end = (uint64_t)pos + length;
                if (value_end > (uint64_t)end) {
                    return fail_overrun(walk, value_end, eager);
                }
                /* pydicom parses a defined-length sequence later from a copy of its value, leniently. */
                sequence_end = (Py_ssize_t)value_end;
                sequence_delimited = 0;
                sequence_eager = 0;
            }
            PyObject *items = NULL;
            if (dataset != NULL && wanted != NULL && (items = new_sequence()) == NULL) {
                return -1;
            }
            int share = wanted != NULL && wanted->shared_items;
            if (explicit_sequence(walk, &pos, sequence_end, sequence_delimited, sequence_eager, depth + 1, items,
                                  share) < 0) {
                Py_XDECREF(items);
                return -1;
            }
            if (items != NULL && store(dataset, wanted, items) < 0) {
                return -1;
            }
            continue;
        }
        /* Past here: a value, or a defined-length sequence nothing reads, which pydicom never parses either. */
        if (length == UNDEFINED_LENGTH) {
            if (!implicit_element && wanted == NULL && slot >= 0 && scanner->encapsulated[slot]) {
                if (skip_encapsulated(walk, &pos, end) < 0) {
                    return -1;
                }
                continue;
            }
            return fail_unsupported(walk, "undefined length on a VR that cannot have it");
        }
        uint64_t value_end = (uint64_t)pos + length;
        if (value_end > (uint64_t)end) {
            return fail_overrun(walk, value_end, eager);
        }
        if (wanted != NULL) {
            if (!implicit_element && wanted->vr != vr) {
                return fail_unsupported(walk, "VR differs from the data dictionary");
            }
            if (dataset != NULL &&
                store(dataset, wanted, value_bytes(walk, buf + pos, (Py_ssize_t)length)) < 0) {
                return -1;
            }
            if (tag == TAG_SPECIFIC_CHARACTER_SET && check_charset(walk, buf + pos, (Py_ssize_t)length, eager) < 0) {
                return -1;
            }
        }
        pos = (Py_ssize_t)value_end;
    }
    untrack_dataset(dataset);
    *pos_io = pos;
    return 0;
}

static int
explicit_sequence(const Walk *walk, Py_ssize_t *pos_io, Py_ssize_t end, int delimited, int eager, int depth,
                  PyObject *items, int share)
{
    const uint8_t *buf = walk->buf;
    Py_ssize_t pos = *pos_io;
    for (;;) {
        if (pos >= end) {
            if (delimited) {
                return fail_overrun(walk, (uint64_t)end + 8, eager);
            }
            break;
        }
        if (pos + 8 > end) {
            return fail_overrun(walk, (uint64_t)pos + 8, eager);
        }
        uint32_t tag = (uint32_t)read_u16(buf + pos) << 16 | read_u16(buf + pos + 2);
        uint32_t length = read_u32(buf + pos + 4);
        pos += 8;
        if (tag == TAG_SEQUENCE_DELIMITATION_ITEM) {
            /* pydicom ends a sequence at this tag whatever its length, and a defined-length one reads no
             * further in its value. */
            if (!delimited) {
                pos = end;
            }
            break;
        }
        if (tag != TAG_ITEM) {
            return fail_not_an_item(walk, eager);
        }
        {
            Py_ssize_t item_end = end;
            int item_delimited = 1;
            if (length != UNDEFINED_LENGTH) {
                if ((uint64_t)pos + length > (uint64_t)end) {
                    /* Not truncation for pydicom: an item's length only bounds its loop, which also ends at
                     * an Item Delimitation Item or at the end of the data, without a word. */
                    return fail_unsupported(walk, "item length overruns its sequence");
                }
                item_end = pos + (Py_ssize_t)length;
                item_delimited = 0;
            }
            if (pos + 6 <= item_end && read_u32(buf + pos) != 0xE00DFFFEu && !vr_letters(buf[pos + 4], buf[pos + 5])) {
                /* pydicom reads an item whose first element has no VR letters as implicit VR, all of it (one that
                 * is only an Item Delimitation Item ends either way). */
                return fail_unsupported(walk, "item in implicit VR inside explicit VR");
            }
            if (items == NULL) {
                if (explicit_dataset(walk, &pos, item_end, item_delimited, eager, depth, NULL) < 0) {
                    return -1;
                }
                continue;
            }
            PyObject *item;
            if (walk_item(walk, explicit_dataset, pos - 8, &pos, item_end, item_delimited, eager, depth, share,
                          &item) < 0 ||
                append_item(items, item) < 0) {
                return -1;
            }
        }
    }
    *pos_io = pos;
    return 0;
}

/*
 * Implicit VR: as the Python walker's `_implicit_dataset` / `_implicit_sequence`, recursive, with the VR of
 * a kept attribute from the wanted-tag table. `depth` counts data sets as the Python walker does: the top
 * level is 0, and an item data set deeper than max_depth is refused when it is entered.
 */
static int implicit_sequence(const Walk *, Py_ssize_t *, Py_ssize_t, int, int, int, PyObject *, int);

static int
implicit_dataset(const Walk *walk, Py_ssize_t *pos_io, Py_ssize_t end, int delimited, int eager, int depth,
                 PyObject *dataset)
{
    const Scanner *scanner = walk->scanner;
    const uint8_t *buf = walk->buf;
    Py_ssize_t pos = *pos_io;
    int64_t last_tag = -1;
    if (depth > scanner->max_depth) {
        return fail_unsupported(walk, "nested too deeply");
    }
    while (pos < end) {
        if (pos + 8 > end) {
            return fail_overrun(walk, (uint64_t)pos + 8, eager);
        }
        uint16_t group = read_u16(buf + pos);
        uint32_t tag = (uint32_t)group << 16 | read_u16(buf + pos + 2);
        uint32_t length = read_u32(buf + pos + 4);
        pos += 8;
        if (group == GROUP_DELIMITERS) {
            if (delimited && tag == TAG_ITEM_DELIMITATION_ITEM) { /* whatever its length, as pydicom */
                untrack_dataset(dataset);
                *pos_io = pos;
                return 0;
            }
            if (tag == TAG_ITEM_DELIMITATION_ITEM && !delimited && depth == 0) {
                pos = end; /* pydicom ends the top-level data set there and reads nothing after it */
                break;
            }
            if (tag == TAG_ITEM_DELIMITATION_ITEM) {
                return fail_unsupported(walk, "Item Delimitation Item inside a defined-length item");
            }
            /* Any other (FFFE,xxxx) tag is an element like any other for pydicom. */
        }
        if (tag == TAG_SPECIFIC_CHARACTER_SET && last_tag >= (int64_t)tag) {
            return fail_unsupported(walk, "Specific Character Set out of order or repeated"); /* as explicit */
        }
        if ((int64_t)tag > last_tag) {
            last_tag = tag;
        }
        const WantedTag *wanted = find_wanted(scanner, tag);
        if (length == UNDEFINED_LENGTH) {
            if (wanted == NULL) {
                int sequence = is_sequence_tag(walk, tag, pos, end);
                if (sequence < 0) {
                    return -1;
                }
                if (!sequence) {
                    return fail_unsupported(walk, "undefined length on an element that is not a sequence");
                }
            }
            else if (wanted->vr != VR_SQ) {
                return fail_unsupported(walk, "undefined length on an element that is not a sequence");
            }
            PyObject *items = NULL;
            if (dataset != NULL && wanted != NULL && (items = new_sequence()) == NULL) {
                return -1;
            }
            if (implicit_sequence(walk, &pos, end, 1, eager, depth, items, wanted != NULL && wanted->shared_items) <
                0) {
                Py_XDECREF(items);
                return -1;
            }
            if (items != NULL && store(dataset, wanted, items) < 0) {
                return -1;
            }
            continue;
        }
        uint64_t value_end = (uint64_t)pos + length;
        if (value_end > (uint64_t)end) {
            return fail_overrun(walk, value_end, eager);
        }
        if (wanted != NULL) {
            if (wanted->vr == VR_SQ) {
                /* pydicom parses a defined-length sequence later from a copy of its value, leniently. */
                PyObject *items = NULL;
                Py_ssize_t sequence_pos = pos;
                if (dataset != NULL && (items = new_sequence()) == NULL) {
                    return -1;
                }
                if (implicit_sequence(walk, &sequence_pos, (Py_ssize_t)value_end, 0, 0, depth, items,
                                      wanted->shared_items) < 0) {
                    Py_XDECREF(items);
                    return -1;
                }
                if (items != NULL && store(dataset, wanted, items) < 0) {
                    return -1;
                }
            }
            else {
                if (dataset != NULL && store(dataset, wanted, value_bytes(walk, buf + pos, (Py_ssize_t)length)) < 0) {
                    return -1;
                }
                if (tag == TAG_SPECIFIC_CHARACTER_SET &&
                    check_charset(walk, buf + pos, (Py_ssize_t)length, eager) < 0) {
                    return -1;
                }
            }
        }
        pos = (Py_ssize_t)value_end;
    }
    if (delimited) {
        return fail_overrun(walk, (uint64_t)end + 8, eager);
    }
    untrack_dataset(dataset);
    *pos_io = pos;
    return 0;
}

static int
implicit_sequence(const Walk *walk, Py_ssize_t *pos_io, Py_ssize_t end, int delimited, int eager, int depth,
                  PyObject *items, int share)
{
    const uint8_t *buf = walk->buf;
    Py_ssize_t pos = *pos_io;
    depth += 1;
    while (pos < end) {
        if (pos + 8 > end) {
            return fail_overrun(walk, (uint64_t)pos + 8, eager);
        }
        uint32_t tag = (uint32_t)read_u16(buf + pos) << 16 | read_u16(buf + pos + 2);
        uint32_t length = read_u32(buf + pos + 4);
        pos += 8;
        if (tag == TAG_SEQUENCE_DELIMITATION_ITEM) {
            *pos_io = delimited ? pos : end; /* as explicit_sequence */
            return 0;
        }
        if (tag != TAG_ITEM) {
            return fail_not_an_item(walk, eager);
        }
        {
            Py_ssize_t item_pos = pos, item_end = end;
            int item_delimited = 1;
            if (length != UNDEFINED_LENGTH) {
                if ((uint64_t)pos + length > (uint64_t)end) {
                    /* Not truncation for pydicom: see explicit_sequence. */
                    return fail_unsupported(walk, "item length overruns its sequence");
                }
                item_end = pos + (Py_ssize_t)length;
                item_delimited = 0;
            }
            PyObject *item = NULL;
            if (items == NULL ? implicit_dataset(walk, &item_pos, item_end, item_delimited, eager, depth, NULL) < 0
                              : walk_item(walk, implicit_dataset, pos - 8, &item_pos, item_end, item_delimited, eager,
                                          depth, share, &item) < 0) {
                return -1;
            }
            if (items != NULL && append_item(items, item) < 0) {
                return -1;
            }
            /* A defined-length item ends at its length, wherever its data set stopped (as the Python walker). */
            pos = item_delimited ? item_pos : item_end;
        }
    }
    if (delimited) {
        return fail_overrun(walk, (uint64_t)end + 8, eager);
    }
    *pos_io = pos;
    return 0;
}

/* --- Scanner.scan ------------------------------------------------------------------------------------ */

PyDoc_STRVAR(Scanner_scan_doc,
             "scan($self, data, pos, explicit, /)\n--\n\n"
             "The top-level data set of `data` (any contiguous buffer) from byte `pos` to the end, in explicit\n"
             "or implicit VR little endian: a dict of the wanted tags' values (bytes) and sequences (lists of\n"
             "such dicts). Raises the configured signals exactly where fast_parser's Python walker does.");

static PyObject *
Scanner_scan(Scanner *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "scan() takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    if (self->unsupported == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Scanner was not initialised");
        return NULL;
    }
    Py_ssize_t pos = PyNumber_AsSsize_t(args[1], PyExc_OverflowError);
    if (pos == -1 && PyErr_Occurred()) {
        return NULL;
    }
    int explicit_vr = PyObject_IsTrue(args[2]);
    if (explicit_vr < 0) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *dataset = NULL;
    if (pos < 0 || pos > view.len) {
        PyErr_SetString(PyExc_ValueError, "pos is outside the data");
    }
    else if ((dataset = PyDict_New()) != NULL) {
        Interned interned = {NULL, 0, 0};
        SharedItems shared = {NULL, 0, 0};
        Walk walk = {self, args[0], (const uint8_t *)view.buf, view.len, &interned, &shared};
        self->scans++;
        int failed = explicit_vr ? explicit_dataset(&walk, &pos, view.len, 0, 1, 0, dataset)
                                 : implicit_dataset(&walk, &pos, view.len, 0, 1, 0, dataset);
        self->scans--;
        intern_clear(&interned);
        shared_clear(&shared);
        if (failed) {
            Py_CLEAR(dataset);
        }
    }
    PyBuffer_Release(&view);
    return dataset;
}

static PyMethodDef Scanner_methods[] = {
    {"scan", (PyCFunction)(void (*)(void))Scanner_scan, METH_FASTCALL, Scanner_scan_doc},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(Scanner_doc,
             "Scanner(*, read_vr, header_sizes, encapsulated_vrs, shared_item_sequences, unsupported, corrupt, "
             "is_sequence_tag, check_charset, max_depth)\n--\n\n"
             "Walks DICOM data sets keeping the tags of `read_vr` (tag -> 2-byte VR). `header_sizes`: VR code\n"
             "(int.from_bytes(vr, 'little')) -> explicit VR header size; `encapsulated_vrs`: VR codes that\n"
             "may hold encapsulated pixel data; `shared_item_sequences`: sequence tags whose equal items are\n"
             "returned as one dict within a scan. `unsupported`: exception class raised with a reason;\n"
             "`corrupt([why])`: returns the exception for corrupt data (truncation without `why`);\n"
             "`is_sequence_tag(tag, data, pos, end)`: "
             "whether an undefined-length implicit VR element\nthat is not kept is a sequence; "
             "`check_charset(value, eager)`: raises for a Specific Character Set value pydicom cannot read.");

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sr2fhir_core.reading._scan.Scanner",
    .tp_doc = Scanner_doc,
    .tp_basicsize = sizeof(Scanner),
    .tp_itemsize = 0,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Scanner_init,
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_traverse = (traverseproc)Scanner_traverse,
    .tp_clear = (inquiry)Scanner_clear,
    .tp_methods = Scanner_methods,
};

/* --- module ------------------------------------------------------------------------------------------ */

/* fast_parser refuses a build whose VERSION differs from the one it expects (a stale in-place build). */
#define SCAN_VERSION 7

PyDoc_STRVAR(module_doc, "The element-header walk of sr2fhir_core.reading.fast_parser, in C.");

static struct PyModuleDef scan_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "sr2fhir_core.reading._scan",
    .m_doc = module_doc,
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__scan(void)
{
    if (PyType_Ready(&ScannerType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&scan_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddIntConstant(module, "VERSION", SCAN_VERSION) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&ScannerType);
    if (PyModule_AddObject(module, "Scanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(&ScannerType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
