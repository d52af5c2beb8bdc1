/*
 * sr2fhir_core.reading._tree: the content-tree builder of `fast_reader` in C.
 *
 * A `Builder` turns the Content Sequence of a `RawDataSet` (what `fast_parser` returns: dicts from int tag
 * to bytes, or to lists of such dicts) into the tuple of content items `fast_reader._children` builds from
 * it: equal objects, built in the same order, with the same exception where a value fails. The Python
 * builder in `fast_reader.py` is the specification; tests/test_reader_differential.py and tests/test_tree.py
 * compare the two.
 *
 * What is here is the traversal, the dict lookups, the hits of the process-wide caches and the construction
 * of the items. Every value whose meaning is not trivially the same in C is computed by the Python function
 * the Python builder calls (given to the Builder when it is configured): cache misses, Specific Character
 * Set, text in the item's character set, Relationship and Value Types that are not written as expected,
 * integer lists, and the rare Value Types, which keep their Python builders. A value of an unexpected type
 * (a sequence where bytes were expected, or the reverse: only a scanner bug could produce one) makes the
 * whole item go to the Python builder, which then fails or succeeds exactly as it would alone.
 *
 * Items are built by writing their slots directly: every field, the given values and the defaults of the
 * others, which `fast_reader` passes for each class (the dataclass's fields in order). This is what the
 * generated `__init__` does, without a Python frame and kwargs dict per item (0.2-0.3 µs of ~0.6 µs per
 * item). `fast_reader` only hands over plain slotted dataclasses (no __post_init__, no factories, every
 * slot a field), and the Builder checks each field is a writable object slot of the class.
 *
 * Recursion: one C call per nesting level of content items, counted against the interpreter's recursion
 * limit (Py_EnterRecursiveCall). The scanner already bounds nesting (`fast_parser.MAX_DEPTH` data sets,
 * two per content level), so a tree it accepts is at most 50 levels deep.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include "structmember.h"

/* --- what the Builder is configured with ------------------------------------------------------------- */

/* Tags read here: the names of `reading.tags`, in this order. */
#define TAG_NAMES(X)                                                                                        \
    X(SPECIFIC_CHARACTER_SET)                                                                               \
    X(RELATIONSHIP_TYPE)                                                                                    \
    X(VALUE_TYPE)                                                                                           \
    X(REFERENCED_CONTENT_ITEM_IDENTIFIER)                                                                   \
    X(CONCEPT_NAME_CODE_SEQUENCE)                                                                           \
    X(OBSERVATION_UID)                                                                                      \
    X(OBSERVATION_DATETIME)                                                                                 \
    X(CONTENT_SEQUENCE)                                                                                     \
    X(CONTENT_TEMPLATE_SEQUENCE)                                                                            \
    X(CONTINUITY_OF_CONTENT)                                                                                \
    X(TEMPLATE_IDENTIFIER)                                                                                  \
    X(MAPPING_RESOURCE)                                                                                     \
    X(MEASURED_VALUE_SEQUENCE)                                                                              \
    X(NUMERIC_VALUE)                                                                                        \
    X(FLOATING_POINT_VALUE)                                                                                 \
    X(MEASUREMENT_UNITS_CODE_SEQUENCE)                                                                      \
    X(NUMERIC_VALUE_QUALIFIER_CODE_SEQUENCE)                                                                \
    X(CONCEPT_CODE_SEQUENCE)                                                                                \
    X(REFERENCED_SOP_SEQUENCE)                                                                              \
    X(REFERENCED_SOP_CLASS_UID)                                                                             \
    X(REFERENCED_SOP_INSTANCE_UID)                                                                          \
    X(REFERENCED_FRAME_NUMBER)                                                                              \
    X(REFERENCED_SEGMENT_NUMBER)                                                                            \
    X(CODE_VALUE)                                                                                           \
    X(CODING_SCHEME_DESIGNATOR)                                                                             \
    X(CODE_MEANING)                                                                                         \
    X(CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE)                                                        \
    X(PERTINENT_OTHER_EVIDENCE_SEQUENCE)                                                                    \
    X(STUDY_INSTANCE_UID)                                                                                   \
    X(REFERENCED_SERIES_SEQUENCE)                                                                           \
    X(SERIES_INSTANCE_UID)

/* Python functions the Builder calls for what it does not do itself (see fast_reader._load_c_tree). */
#define FALLBACK_NAMES(X)                                                                                   \
    X(content_item)   /* (item, position, parent_encodings) -> item: the whole Python builder */           \
    X(encodings_for)  /* (Specific Character Set bytes) -> encodings */                                    \
    X(relationship)   /* (raw not in `relationships`) -> RelationshipType */                               \
    X(value_type)     /* (raw not in `value_types`, or None) -> Value Type text */                         \
    X(code)           /* (code item, encodings) -> Code | None, on a cache miss */                         \
    X(uid_text)       /* (raw) -> str | None, on a cache miss */                                            \
    X(coded_text)     /* (raw) -> str | None, on a cache miss */                                            \
    X(ascii_text)     /* (raw) -> str | None */                                                             \
    X(ds_text)        /* (raw) -> str | None, for what the plain-number check here does not accept */      \
    X(first_float64)  /* (raw) -> float | None, for a length that is not a multiple of 8 */                \
    X(ints)           /* (item, tag) -> tuple[int, ...], for a non-empty value */                         \
    X(evidence)       /* (dataset, encodings) -> tuple[EvidenceInstance, ...]: the whole Python walk */

#define AS_ENUM(name) TAG_##name,
enum { TAG_NAMES(AS_ENUM) TAG_COUNT };
#undef AS_ENUM
#define AS_ENUM(name) FALLBACK_##name,
enum { FALLBACK_NAMES(AS_ENUM) FALLBACK_COUNT };
#undef AS_ENUM

#define AS_STRING(name) #name,
static const char *const tag_names[] = {TAG_NAMES(AS_STRING) NULL};
static const char *const fallback_names[] = {FALLBACK_NAMES(AS_STRING) NULL};
#undef AS_STRING

/* How a Value Type is built (`kinds`: Value Type text -> (kind, class, tag, function)). */
enum {
    KIND_CONTAINER,
    KIND_NUM,
    KIND_CODE,
    KIND_UID_VALUE,  /* UIDREF: class(value=uid_text(raw) or "") */
    KIND_TEXT_VALUE, /* TEXT, DATE, TIME, DATETIME: class(value=function(raw, encodings) or "") */
    KIND_REFERENCE,  /* IMAGE, COMPOSITE: class(reference=SopReference | None) */
    KIND_PYTHON,     /* function(item, encodings, position, relationship, concept, uid, datetime, children) */
    KIND_COUNT
};

/* How one call builds an instance of a class: each field's slot, and where its value comes from. */
#define MAX_FIELDS_PER_CLASS 16

typedef struct {
    PyTypeObject *cls; /* NULL: not loaded */
    int count;
    Py_ssize_t offsets[MAX_FIELDS_PER_CLASS];
    PyObject *defaults[MAX_FIELDS_PER_CLASS]; /* NULL where the call gives the value */
    int source[MAX_FIELDS_PER_CLASS];         /* index into the call's values, or -1: the default */
} Constructor;

typedef struct {
    Constructor make;        /* the item class with the kind's fields (unset for KIND_PYTHON) */
    Constructor alternative; /* KIND_NUM: without a measurement, the qualifier alone */
    PyObject *tag;           /* the value's tag (KIND_*_VALUE) */
    PyObject *function;      /* KIND_TEXT_VALUE, KIND_PYTHON */
    int kind;
} Kind;

#define MAX_KINDS 64

typedef struct {
    PyObject_HEAD
    PyObject *tags[TAG_COUNT];           /* int tag objects, the dict keys */
    PyObject *fallbacks[FALLBACK_COUNT]; /* callables */
    PyObject *code_tags;                 /* fast_reader._CODE_TAGS: the full cache key's tags */
    PyObject *code_cache;                /* fast_reader._CODE_CACHE */
    PyObject *uid_cache;                 /* fast_values._UID_CACHE */
    PyObject *ascii_cache;               /* fast_values._ASCII_CACHE */
    PyObject *relationships;             /* raw Relationship Type -> RelationshipType */
    PyObject *raw_kinds;                 /* raw Value Type -> index into `kinds` */
    PyObject *text_kinds;                /* Value Type text -> index into `kinds` */
    Constructor by_reference;            /* ByReferenceItem */
    Constructor unknown;                 /* UnknownItem */
    Constructor sop_reference;           /* SopReference */
    Constructor evidence_instance;       /* EvidenceInstance */
    PyObject *empty_text;                /* "" */
    Kind kinds[MAX_KINDS];
    Py_ssize_t kind_count;
    int builds; /* builds running: __init__ must not swap the tables under them */
} Builder;

/* --- configuration ----------------------------------------------------------------------------------- */

static int
load_names(PyObject *mapping, const char *const *names, PyObject **out, const char *what, int callable)
{
    if (!PyDict_Check(mapping)) {
        PyErr_Format(PyExc_TypeError, "%s must be a dict", what);
        return -1;
    }
    for (int i = 0; names[i] != NULL; i++) {
        PyObject *value = PyDict_GetItemString(mapping, names[i]);
        if (value == NULL) {
            PyErr_Format(PyExc_KeyError, "%s has no %s", what, names[i]);
            return -1;
        }
        if (callable ? !PyCallable_Check(value) : !PyLong_CheckExact(value)) {
            PyErr_Format(PyExc_TypeError, "%s[%s] must be %s", what, names[i], callable ? "callable" : "an int");
            return -1;
        }
        Py_INCREF(value);
        out[i] = value;
    }
    return 0;
}

static void
clear_constructor(Constructor *constructor)
{
    for (int i = 0; i < constructor->count; i++) {
        Py_CLEAR(constructor->defaults[i]);
    }
    constructor->count = 0;
    Py_CLEAR(constructor->cls);
}

static int
visit_constructor(Constructor *constructor, visitproc visit, void *arg)
{
    for (int i = 0; i < constructor->count; i++) {
        Py_VISIT(constructor->defaults[i]);
    }
    Py_VISIT(constructor->cls);
    return 0;
}

/* A call of `cls` with keyword arguments `names` (the values given in that order): `layout` is the class's
 * fields in order, ((name, default | required), ...). Every field must be an object slot of the class. */
static int
load_constructor(PyObject *cls, PyObject *layouts, PyObject *required, const char *const *names,
                 Constructor *out)
{
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "item classes must be classes");
        return -1;
    }
    PyObject *layout = PyDict_GetItemWithError(layouts, cls);
    if (layout == NULL || !PyTuple_CheckExact(layout) || PyTuple_GET_SIZE(layout) > MAX_FIELDS_PER_CLASS) {
        if (!PyErr_Occurred()) {
            PyErr_Format(PyExc_TypeError, "layouts[%R] must be a tuple of at most %d (name, default) pairs", cls,
                         MAX_FIELDS_PER_CLASS);
        }
        return -1;
    }
    int given = 0;
    while (names[given] != NULL) {
        given++;
    }
    out->cls = (PyTypeObject *)Py_NewRef(cls);
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(layout); i++) {
        PyObject *name, *fallback;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(layout, i), "UO", &name, &fallback)) {
            return -1;
        }
        out->count = (int)i + 1;
        out->source[i] = -1;
        for (int j = 0; j < given; j++) {
            if (PyUnicode_CompareWithASCIIString(name, names[j]) == 0) {
                out->source[i] = j;
            }
        }
        if (out->source[i] < 0) {
            if (fallback == required) {
                PyErr_Format(PyExc_ValueError, "%R.%U has no default and is not given", cls, name);
                return -1;
            }
            out->defaults[i] = Py_NewRef(fallback);
        }
        PyObject *descriptor = PyObject_GetAttr(cls, name);
        if (descriptor == NULL) {
            return -1;
        }
        int slot = PyObject_TypeCheck(descriptor, &PyMemberDescr_Type) &&
                   ((PyMemberDescrObject *)descriptor)->d_member->type == T_OBJECT_EX &&
                   !(((PyMemberDescrObject *)descriptor)->d_member->flags & READONLY) &&
                   PyType_IsSubtype((PyTypeObject *)cls, ((PyMemberDescrObject *)descriptor)->d_common.d_type);
        if (slot) {
            out->offsets[i] = ((PyMemberDescrObject *)descriptor)->d_member->offset;
        }
        Py_DECREF(descriptor);
        if (!slot) {
            PyErr_Format(PyExc_TypeError, "%R.%U is not a writable object slot", cls, name);
            return -1;
        }
    }
    for (int j = 0; j < given; j++) {
        int used = 0;
        for (int i = 0; i < out->count; i++) {
            used |= out->source[i] == j;
        }
        if (!used) {
            PyErr_Format(PyExc_ValueError, "%R has no field %s", cls, names[j]);
            return -1;
        }
    }
    return 0;
}

/* The fields every item has, in the order the builders hold their values; then the Value Type's own. */
#define ITEM_FIELDS "position", "relationship", "concept", "observation_uid", "observation_datetime", "children"

static const char *const container_fields_names[] = {ITEM_FIELDS, "continuity", "template_id", "mapping_resource",
                                                     NULL};
static const char *const num_names[] = {ITEM_FIELDS, "numeric_value", "float_value", "unit", "qualifier", NULL};
static const char *const unmeasured_num_names[] = {ITEM_FIELDS, "qualifier", NULL};
static const char *const value_names[] = {ITEM_FIELDS, "value", NULL};
static const char *const reference_names[] = {ITEM_FIELDS, "reference", NULL};
static const char *const by_reference_names[] = {"position", "relationship", "referenced_position", NULL};
static const char *const unknown_names[] = {ITEM_FIELDS, "raw_value_type", NULL};
static const char *const sop_reference_names[] = {"sop_class_uid", "sop_instance_uid", "frame_numbers",
                                                  "segment_numbers", NULL};
static const char *const evidence_instance_names[] = {"study_instance_uid", "series_instance_uid", "sop_class_uid",
                                                      "sop_instance_uid", NULL};

/* `kinds`: Value Type text -> (kind, class | None, tag | None, function | None). Fills `text_kinds` and,
 * through `value_types` (raw Value Type -> text), `raw_kinds`. */
static int
load_kinds(Builder *self, PyObject *kinds, PyObject *value_types, PyObject *layouts, PyObject *required)
{
    if (!PyDict_Check(kinds) || !PyDict_Check(value_types)) {
        PyErr_SetString(PyExc_TypeError, "kinds and value_types must be dicts");
        return -1;
    }
    if ((self->text_kinds = PyDict_New()) == NULL || (self->raw_kinds = PyDict_New()) == NULL) {
        return -1;
    }
    PyObject *text, *spec;
    Py_ssize_t pos = 0;
    while (PyDict_Next(kinds, &pos, &text, &spec)) {
        if (self->kind_count >= MAX_KINDS) {
            PyErr_SetString(PyExc_ValueError, "too many kinds");
            return -1;
        }
        PyObject *kind_object, *cls, *tag, *function;
        if (!PyUnicode_Check(text) || !PyTuple_Check(spec) ||
            !PyArg_ParseTuple(spec, "OOOO", &kind_object, &cls, &tag, &function)) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_TypeError, "kinds: Value Type text -> (kind, class, tag, function)");
            }
            return -1;
        }
        long kind = PyLong_AsLong(kind_object);
        if (kind == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (kind < 0 || kind >= KIND_COUNT) {
            PyErr_Format(PyExc_ValueError, "unknown kind %ld", kind);
            return -1;
        }
        int needs_class = kind != KIND_PYTHON;
        int needs_tag = kind == KIND_UID_VALUE || kind == KIND_TEXT_VALUE;
        int needs_function = kind == KIND_TEXT_VALUE || kind == KIND_PYTHON;
        if ((needs_tag && !PyLong_CheckExact(tag)) || (needs_function && !PyCallable_Check(function))) {
            PyErr_SetString(PyExc_TypeError, "kinds: a tag (int) or function is missing");
            return -1;
        }
        Kind *entry = &self->kinds[self->kind_count];
        entry->kind = (int)kind;
        entry->tag = needs_tag ? Py_NewRef(tag) : NULL;
        entry->function = needs_function ? Py_NewRef(function) : NULL;
        self->kind_count++;
        if (needs_class) {
            static const char *const *const names_of_kind[] = {
                [KIND_CONTAINER] = container_fields_names, [KIND_NUM] = num_names,
                [KIND_CODE] = value_names,                 [KIND_UID_VALUE] = value_names,
                [KIND_TEXT_VALUE] = value_names,           [KIND_REFERENCE] = reference_names,
            };
            if (load_constructor(cls, layouts, required, names_of_kind[kind], &entry->make) < 0 ||
                (kind == KIND_NUM &&
                 load_constructor(cls, layouts, required, unmeasured_num_names, &entry->alternative) < 0)) {
                return -1;
            }
        }
        PyObject *index = PyLong_FromSsize_t(self->kind_count - 1);
        if (index == NULL) {
            return -1;
        }
        int failed = PyDict_SetItem(self->text_kinds, text, index);
        Py_DECREF(index);
        if (failed < 0) {
            return -1;
        }
    }
    PyObject *raw;
    pos = 0;
    while (PyDict_Next(value_types, &pos, &raw, &text)) {
        PyObject *index = PyDict_GetItemWithError(self->text_kinds, text);
        if (index == NULL) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_ValueError, "value_types maps to a Value Type that kinds does not have");
            }
            return -1;
        }
        if (PyDict_SetItem(self->raw_kinds, raw, index) < 0) {
            return -1;
        }
    }
    return 0;
}

static int
Builder_traverse(Builder *self, visitproc visit, void *arg)
{
    for (int i = 0; i < TAG_COUNT; i++) {
        Py_VISIT(self->tags[i]);
    }
    for (int i = 0; i < FALLBACK_COUNT; i++) {
        Py_VISIT(self->fallbacks[i]);
    }
    Py_VISIT(self->code_tags);
    Py_VISIT(self->code_cache);
    Py_VISIT(self->uid_cache);
    Py_VISIT(self->ascii_cache);
    Py_VISIT(self->relationships);
    Py_VISIT(self->raw_kinds);
    Py_VISIT(self->text_kinds);
    Py_VISIT(self->empty_text);
    Constructor *constructors[] = {&self->by_reference, &self->unknown, &self->sop_reference,
                                   &self->evidence_instance};
    for (size_t i = 0; i < sizeof constructors / sizeof constructors[0]; i++) {
        int failed = visit_constructor(constructors[i], visit, arg);
        if (failed) {
            return failed;
        }
    }
    for (Py_ssize_t i = 0; i < self->kind_count; i++) {
        int failed = visit_constructor(&self->kinds[i].make, visit, arg);
        if (failed || (failed = visit_constructor(&self->kinds[i].alternative, visit, arg))) {
            return failed;
        }
        Py_VISIT(self->kinds[i].tag);
        Py_VISIT(self->kinds[i].function);
    }
    return 0;
}

static int
Builder_clear(Builder *self)
{
    for (int i = 0; i < TAG_COUNT; i++) {
        Py_CLEAR(self->tags[i]);
    }
    for (int i = 0; i < FALLBACK_COUNT; i++) {
        Py_CLEAR(self->fallbacks[i]);
    }
    Py_CLEAR(self->code_tags);
    Py_CLEAR(self->code_cache);
    Py_CLEAR(self->uid_cache);
    Py_CLEAR(self->ascii_cache);
    Py_CLEAR(self->relationships);
    Py_CLEAR(self->raw_kinds);
    Py_CLEAR(self->text_kinds);
    clear_constructor(&self->by_reference);
    clear_constructor(&self->unknown);
    clear_constructor(&self->sop_reference);
    clear_constructor(&self->evidence_instance);
    Py_CLEAR(self->empty_text);
    for (Py_ssize_t i = 0; i < self->kind_count; i++) {
        clear_constructor(&self->kinds[i].make);
        clear_constructor(&self->kinds[i].alternative);
        Py_CLEAR(self->kinds[i].tag);
        Py_CLEAR(self->kinds[i].function);
    }
    self->kind_count = 0;
    return 0;
}

static void
Builder_dealloc(Builder *self)
{
    PyObject_GC_UnTrack(self);
    Builder_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
Builder_init(Builder *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {
        "tags", "fallbacks", "code_tags", "code_cache", "uid_cache", "ascii_cache", "relationships",
        "value_types", "kinds", "by_reference", "unknown", "sop_reference", "evidence_instance", "layouts",
        "required", NULL,
    };
    PyObject *tags, *fallbacks, *code_tags, *code_cache, *uid_cache, *ascii_cache, *relationships, *value_types,
        *kinds, *by_reference, *unknown, *sop_reference, *evidence_instance, *layouts, *required;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$OOOOOOOOOOOOOO!O:Builder", keywords, &tags, &fallbacks,
                                     &code_tags, &code_cache, &uid_cache, &ascii_cache, &relationships,
                                     &value_types, &kinds, &by_reference, &unknown, &sop_reference,
                                     &evidence_instance, &PyDict_Type, &layouts, &required)) {
        return -1;
    }
    if (self->builds > 0) {
        PyErr_SetString(PyExc_RuntimeError, "Builder re-initialised during a build");
        return -1;
    }
    if (!PyTuple_CheckExact(code_tags) || !PyDict_CheckExact(code_cache) || !PyDict_CheckExact(uid_cache) ||
        !PyDict_CheckExact(ascii_cache) || !PyDict_CheckExact(relationships)) {
        PyErr_SetString(PyExc_TypeError, "code_tags must be a tuple; the caches and relationships dicts");
        return -1;
    }
    Builder_clear(self); /* __init__ may be called again */
    if (load_names(tags, tag_names, self->tags, "tags", 0) < 0 ||
        load_names(fallbacks, fallback_names, self->fallbacks, "fallbacks", 1) < 0 ||
        load_kinds(self, kinds, value_types, layouts, required) < 0 ||
        load_constructor(by_reference, layouts, required, by_reference_names, &self->by_reference) < 0 ||
        load_constructor(unknown, layouts, required, unknown_names, &self->unknown) < 0 ||
        load_constructor(sop_reference, layouts, required, sop_reference_names, &self->sop_reference) < 0 ||
        load_constructor(evidence_instance, layouts, required, evidence_instance_names, &self->evidence_instance) <
            0 ||
        (self->empty_text = PyUnicode_FromStringAndSize("", 0)) == NULL) {
        Builder_clear(self);
        return -1;
    }
    self->code_tags = Py_NewRef(code_tags);
    self->code_cache = Py_NewRef(code_cache);
    self->uid_cache = Py_NewRef(uid_cache);
    self->ascii_cache = Py_NewRef(ascii_cache);
    self->relationships = Py_NewRef(relationships);
    return 0;
}

/* --- values ------------------------------------------------------------------------------------------ */

/* A build step's outcome besides a new reference: an error is set, or the item must go to Python. */
#define FAILED (-1)
#define TO_PYTHON 1

/* dataset.get(tag): a borrowed reference or NULL (absent). Int keys cannot fail to hash or compare. */
static inline PyObject *
get(const Builder *b, PyObject *dataset, int tag)
{
    return PyDict_GetItemWithError(dataset, b->tags[tag]);
}

static inline PyObject *
call1(const Builder *b, int fallback, PyObject *arg)
{
    return PyObject_CallOneArg(b->fallbacks[fallback], arg);
}

static inline PyObject *
call2(PyObject *function, PyObject *first, PyObject *second)
{
    PyObject *args[] = {first, second};
    return PyObject_Vectorcall(function, args, 2, NULL);
}

/* `cache.get(raw)` on a hit, else fallback(raw) (which also fills the cache): fast_values.uid_text/coded_text. */
static PyObject *
cached_text(const Builder *b, PyObject *cache, int fallback, PyObject *raw)
{
    if (PyBytes_CheckExact(raw)) {
        PyObject *hit = PyDict_GetItemWithError(cache, raw);
        if (hit != NULL) {
            return Py_NewRef(hit);
        }
        if (PyErr_Occurred()) {
            return NULL;
        }
    }
    return call1(b, fallback, raw);
}

/* `_encodings(dataset, parent)`: an item's own Specific Character Set wins over its parent's. New reference. */
static PyObject *
encodings_of(const Builder *b, PyObject *dataset, PyObject *parent)
{
    PyObject *charset = get(b, dataset, TAG_SPECIFIC_CHARACTER_SET);
    if (charset == NULL) {
        return PyErr_Occurred() ? NULL : Py_NewRef(parent);
    }
    return call1(b, FALLBACK_encodings_for, charset);
}

/* `sequence[0] if sequence else None` for a sequence value (or NULL when absent): 0 with a borrowed item or
 * NULL in *first; TO_PYTHON when the value is not a list of dicts. */
static int
first_item(PyObject *sequence, PyObject **first)
{
    *first = NULL;
    if (sequence == NULL) {
        return 0;
    }
    if (!PyList_CheckExact(sequence)) {
        return TO_PYTHON;
    }
    if (PyList_GET_SIZE(sequence) == 0) {
        return 0;
    }
    *first = PyList_GET_ITEM(sequence, 0);
    return PyDict_CheckExact(*first) ? 0 : TO_PYTHON;
}

/* `fast_reader._code(item, encodings)`: the cache key as the Python function makes it, then its cache. */
static PyObject *
code_of_item(const Builder *b, PyObject *item, PyObject *encodings)
{
    PyObject *key = NULL;
    if (PyDict_GET_SIZE(item) == 3) {
        PyObject *value = get(b, item, TAG_CODE_VALUE);
        PyObject *designator = value ? get(b, item, TAG_CODING_SCHEME_DESIGNATOR) : NULL;
        PyObject *meaning = designator ? get(b, item, TAG_CODE_MEANING) : NULL;
        if (meaning != NULL) {
            key = PyTuple_Pack(4, encodings, value, designator, meaning);
            if (key == NULL) {
                return NULL;
            }
        }
        else if (PyErr_Occurred()) {
            return NULL;
        }
    }
    if (key == NULL) {
        Py_ssize_t count = PyTuple_GET_SIZE(b->code_tags);
        key = PyTuple_New(count + 1);
        if (key == NULL) {
            return NULL;
        }
        PyTuple_SET_ITEM(key, 0, Py_NewRef(encodings));
        for (Py_ssize_t i = 0; i < count; i++) {
            PyObject *value = PyDict_GetItemWithError(item, PyTuple_GET_ITEM(b->code_tags, i));
            if (value == NULL && PyErr_Occurred()) {
                Py_DECREF(key);
                return NULL;
            }
            PyTuple_SET_ITEM(key, i + 1, Py_NewRef(value ? value : Py_None));
        }
    }
    PyObject *hit = PyDict_GetItemWithError(b->code_cache, key);
    Py_DECREF(key);
    if (hit != NULL) {
        return Py_NewRef(hit);
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    return call2(b->fallbacks[FALLBACK_code], item, encodings);
}

/* `_code(sequence[0], encodings) if sequence else None`: 0 with a new reference in *out, or FAILED/TO_PYTHON. */
static int
code_of(const Builder *b, PyObject *sequence, PyObject *encodings, PyObject **out)
{
    PyObject *first;
    int status = first_item(sequence, &first);
    if (status != 0) {
        return status;
    }
    *out = first == NULL ? Py_NewRef(Py_None) : code_of_item(b, first, encodings);
    return *out == NULL ? FAILED : 0;
}

/* `value or ""` (stealing `value`). */
static PyObject *
or_empty(const Builder *b, PyObject *value)
{
    if (value == NULL) {
        return NULL;
    }
    int truth = PyObject_IsTrue(value);
    if (truth < 0) {
        Py_DECREF(value);
        return NULL;
    }
    if (truth) {
        return value;
    }
    Py_DECREF(value);
    return Py_NewRef(b->empty_text);
}

static inline int
is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* `fast_values.ds_text` for the common value: one plain decimal number ([+-]digits[.digits][E[+-]digits]),
 * nothing before it and only spaces or NULs after. Python's float() reads every such text, and the Python
 * function returns the number's own text for it. Anything else goes to the Python function. */
static PyObject *
ds_text(const Builder *b, PyObject *raw)
{
    if (PyBytes_CheckExact(raw)) {
        const unsigned char *text = (const unsigned char *)PyBytes_AS_STRING(raw);
        Py_ssize_t end = PyBytes_GET_SIZE(raw);
        while (end > 0 && (text[end - 1] == ' ' || text[end - 1] == '\0')) {
            end--;
        }
        Py_ssize_t i = 0;
        if (i < end && (text[i] == '+' || text[i] == '-')) {
            i++;
        }
        Py_ssize_t digits = 0;
        while (i < end && is_digit(text[i])) {
            i++, digits++;
        }
        if (i < end && text[i] == '.') {
            i++;
            while (i < end && is_digit(text[i])) {
                i++, digits++;
            }
        }
        int plain = digits > 0;
        if (plain && i < end && (text[i] == 'e' || text[i] == 'E')) {
            i++;
            if (i < end && (text[i] == '+' || text[i] == '-')) {
                i++;
            }
            Py_ssize_t exponent_digits = 0;
            while (i < end && is_digit(text[i])) {
                i++, exponent_digits++;
            }
            plain = exponent_digits > 0;
        }
        if (plain && i == end) {
            return PyUnicode_DecodeASCII((const char *)text, end, NULL);
        }
    }
    return call1(b, FALLBACK_ds_text, raw);
}

/* `fast_values.first_float64(raw)`, called only for a non-empty value. */
static PyObject *
first_float64(const Builder *b, PyObject *raw)
{
    if (PyBytes_CheckExact(raw) && PyBytes_GET_SIZE(raw) >= 8 && PyBytes_GET_SIZE(raw) % 8 == 0) {
        double value = PyFloat_Unpack8(PyBytes_AS_STRING(raw), 1);
        if (value == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
        return PyFloat_FromDouble(value);
    }
    return call1(b, FALLBACK_first_float64, raw);
}

/* `_ints(dataset, tag)`: () when absent or empty, else the Python function. */
static PyObject *
ints(const Builder *b, PyObject *dataset, int tag)
{
    PyObject *raw = get(b, dataset, tag);
    if (raw == NULL) {
        return PyErr_Occurred() ? NULL : PyTuple_New(0);
    }
    int truth = PyObject_IsTrue(raw);
    if (truth <= 0) {
        return truth < 0 ? NULL : PyTuple_New(0);
    }
    return call2(b->fallbacks[FALLBACK_ints], dataset, b->tags[tag]);
}

/* `_text(dataset, tag, encodings)` for a UI or CS tag: None when absent, else the cached text. */
static PyObject *
optional_text(const Builder *b, PyObject *dataset, int tag, PyObject *cache, int fallback)
{
    PyObject *raw = get(b, dataset, tag);
    if (raw == NULL) {
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    }
    return cached_text(b, cache, fallback, raw);
}

/* An instance with every field set: the call's values (borrowed) or the defaults. */
static PyObject *
construct(const Constructor *c, PyObject *const *values)
{
    PyObject *self = c->cls->tp_alloc(c->cls, 0);
    if (self == NULL) {
        return NULL;
    }
    for (int i = 0; i < c->count; i++) {
        PyObject *value = c->source[i] >= 0 ? values[c->source[i]] : c->defaults[i];
        *(PyObject **)((char *)self + c->offsets[i]) = Py_NewRef(value);
    }
    return self;
}

/* `_sop_reference(item, encodings)`: 0 with a new reference in *out, or FAILED/TO_PYTHON. */
static int
sop_reference(const Builder *b, PyObject *item, PyObject *encodings, PyObject **out)
{
    PyObject *reference;
    int status = first_item(get(b, item, TAG_REFERENCED_SOP_SEQUENCE), &reference);
    if (status != 0 || PyErr_Occurred()) {
        return status != 0 ? status : FAILED;
    }
    if (reference == NULL) {
        *out = Py_NewRef(Py_None);
        return 0;
    }
    PyObject *values[4] = {NULL, NULL, NULL, NULL};
    PyObject *reference_encodings = encodings_of(b, reference, encodings);
    if (reference_encodings == NULL) {
        return FAILED;
    }
    Py_DECREF(reference_encodings); /* only text of VR UI is read here, which does not depend on it */
    PyObject *sop_class =
        optional_text(b, reference, TAG_REFERENCED_SOP_CLASS_UID, b->uid_cache, FALLBACK_uid_text);
    if (sop_class == NULL) {
        return FAILED;
    }
    PyObject *sop_instance =
        optional_text(b, reference, TAG_REFERENCED_SOP_INSTANCE_UID, b->uid_cache, FALLBACK_uid_text);
    if (sop_instance == NULL) {
        Py_DECREF(sop_class);
        return FAILED;
    }
    if (sop_instance == Py_None) {
        Py_DECREF(sop_class);
        *out = sop_instance;
        return 0;
    }
    values[0] = or_empty(b, sop_class);
    values[1] = sop_instance;
    *out = NULL;
    if (values[0] != NULL && (values[2] = ints(b, reference, TAG_REFERENCED_FRAME_NUMBER)) != NULL &&
        (values[3] = ints(b, reference, TAG_REFERENCED_SEGMENT_NUMBER)) != NULL) {
        *out = construct(&b->sop_reference, values);
    }
    for (int i = 0; i < 4; i++) {
        Py_XDECREF(values[i]);
    }
    return *out == NULL ? FAILED : 0;
}

/* --- items ------------------------------------------------------------------------------------------- */

static PyObject *build_children(Builder *b, PyObject *content, PyObject *position, PyObject *encodings);

/* The fields every item has, in ITEM_FIELDS order; then the Value Type's own (new references). */
enum { POSITION, RELATIONSHIP, CONCEPT, OBSERVATION_UID, OBSERVATION_DATETIME, CHILDREN, COMMON };
#define MAX_FIELDS (COMMON + 4)

/* The builders of fast_reader._BUILDERS for the kinds done here: the Value Type's own fields into values. */
static int
container_fields(const Builder *b, PyObject *item, PyObject *encodings, PyObject **values)
{
    PyObject *template;
    int status = first_item(get(b, item, TAG_CONTENT_TEMPLATE_SEQUENCE), &template);
    if (status != 0 || PyErr_Occurred()) {
        return status != 0 ? status : FAILED;
    }
    if (template != NULL && PyDict_GET_SIZE(template) == 0) {
        template = NULL; /* `if template`: an empty item has no template */
    }
    PyObject *template_encodings = template ? encodings_of(b, template, encodings) : Py_NewRef(encodings);
    if (template_encodings == NULL) {
        return FAILED;
    }
    Py_DECREF(template_encodings); /* the template's attributes are CS: read without it */
    if ((values[0] = optional_text(b, item, TAG_CONTINUITY_OF_CONTENT, b->ascii_cache, FALLBACK_coded_text)) ==
        NULL) {
        return FAILED;
    }
    if (template == NULL) {
        values[1] = Py_NewRef(Py_None);
        values[2] = Py_NewRef(Py_None);
        return 0;
    }
    if ((values[1] = optional_text(b, template, TAG_TEMPLATE_IDENTIFIER, b->ascii_cache, FALLBACK_coded_text)) ==
        NULL) {
        return FAILED;
    }
    values[2] = optional_text(b, template, TAG_MAPPING_RESOURCE, b->ascii_cache, FALLBACK_coded_text);
    return values[2] == NULL ? FAILED : 0;
}

/* NumItem: 4 values with a measurement, or 1 (qualifier) without; *measured says which. */
static int
num_fields(const Builder *b, PyObject *item, PyObject *encodings, PyObject **values, int *measured_out)
{
    PyObject *measured;
    int status = first_item(get(b, item, TAG_MEASURED_VALUE_SEQUENCE), &measured);
    if (status != 0 || PyErr_Occurred()) {
        return status != 0 ? status : FAILED;
    }
    PyObject *qualifiers = get(b, item, TAG_NUMERIC_VALUE_QUALIFIER_CODE_SEQUENCE);
    if (qualifiers == NULL && PyErr_Occurred()) {
        return FAILED;
    }
    *measured_out = measured != NULL && PyDict_GET_SIZE(measured) > 0;
    if (!*measured_out) {
        return code_of(b, qualifiers, encodings, &values[0]);
    }
    PyObject *measured_encodings = encodings_of(b, measured, encodings);
    if (measured_encodings == NULL) {
        return FAILED;
    }
    PyObject *numeric_raw = get(b, measured, TAG_NUMERIC_VALUE);
    PyObject *float_raw = numeric_raw || !PyErr_Occurred() ? get(b, measured, TAG_FLOATING_POINT_VALUE) : NULL;
    PyObject *units = float_raw || !PyErr_Occurred() ? get(b, measured, TAG_MEASUREMENT_UNITS_CODE_SEQUENCE) : NULL;
    status = PyErr_Occurred() ? FAILED : 0;
    if (status == 0) {
        values[0] = numeric_raw == NULL ? Py_NewRef(Py_None) : ds_text(b, numeric_raw);
        status = values[0] == NULL ? FAILED : 0;
    }
    if (status == 0) {
        int truth = float_raw == NULL ? 0 : PyObject_IsTrue(float_raw);
        values[1] = truth < 0 ? NULL : truth ? first_float64(b, float_raw) : Py_NewRef(Py_None);
        status = values[1] == NULL ? FAILED : 0;
    }
    if (status == 0) {
        status = code_of(b, units, measured_encodings, &values[2]);
    }
    if (status == 0) {
        status = code_of(b, qualifiers, encodings, &values[3]);
    }
    Py_DECREF(measured_encodings);
    return status;
}

/* The item `fast_reader._content_item(item, position, parent)` builds. New reference, or NULL. */
static PyObject *
build_item(Builder *b, PyObject *item, PyObject *position, PyObject *parent)
{
    PyObject *values[MAX_FIELDS] = {NULL};
    PyObject *encodings = NULL, *value_type_text = NULL, *result = NULL;
    int status = 0;
    if (!PyDict_CheckExact(item)) {
        goto to_python;
    }
    if ((encodings = encodings_of(b, item, parent)) == NULL) {
        goto done;
    }
    values[POSITION] = Py_NewRef(position);

    /* Relationship Type: as written, else RelationshipType.parse */
    PyObject *raw = get(b, item, TAG_RELATIONSHIP_TYPE);
    if (raw == NULL) {
        if (PyErr_Occurred()) {
            goto done;
        }
        values[RELATIONSHIP] = Py_NewRef(Py_None);
    }
    else {
        PyObject *known = PyDict_GetItemWithError(b->relationships, raw);
        if (known == NULL && PyErr_Occurred()) {
            goto done;
        }
        values[RELATIONSHIP] = known ? Py_NewRef(known) : call1(b, FALLBACK_relationship, raw);
        if (values[RELATIONSHIP] == NULL) {
            goto done;
        }
    }

    /* A by-reference item: no Value Type, a non-empty Referenced Content Item Identifier */
    PyObject *value_type_raw = get(b, item, TAG_VALUE_TYPE);
    if (value_type_raw == NULL) {
        if (PyErr_Occurred()) {
            goto done;
        }
        PyObject *referenced = get(b, item, TAG_REFERENCED_CONTENT_ITEM_IDENTIFIER);
        int truth = referenced == NULL ? (PyErr_Occurred() ? -1 : 0) : PyObject_IsTrue(referenced);
        if (truth < 0) {
            goto done;
        }
        if (truth) {
            PyObject *by_reference[3] = {values[POSITION], values[RELATIONSHIP], NULL};
            if ((by_reference[2] = ints(b, item, TAG_REFERENCED_CONTENT_ITEM_IDENTIFIER)) != NULL) {
                result = construct(&b->by_reference, by_reference);
                Py_DECREF(by_reference[2]);
            }
            goto done;
        }
    }

    /* Value Type: as written, else the Python text of it */
    PyObject *index = NULL;
    if (value_type_raw != NULL) {
        index = PyDict_GetItemWithError(b->raw_kinds, value_type_raw);
        if (index == NULL && PyErr_Occurred()) {
            goto done;
        }
    }
    if (index == NULL) {
        if ((value_type_text = call1(b, FALLBACK_value_type, value_type_raw ? value_type_raw : Py_None)) == NULL) {
            goto done;
        }
        index = PyDict_GetItemWithError(b->text_kinds, value_type_text);
        if (index == NULL && PyErr_Occurred()) {
            goto done;
        }
    }
    const Kind *kind = NULL;
    if (index != NULL) {
        Py_ssize_t i = PyLong_AsSsize_t(index);
        if (i == -1 && PyErr_Occurred()) {
            goto done;
        }
        kind = &b->kinds[i];
    }

    /* The common fields, in the Python builder's order */
    if ((status = code_of(b, get(b, item, TAG_CONCEPT_NAME_CODE_SEQUENCE), encodings, &values[CONCEPT])) != 0) {
        goto done;
    }
    raw = get(b, item, TAG_OBSERVATION_UID);
    values[OBSERVATION_UID] = raw ? cached_text(b, b->uid_cache, FALLBACK_uid_text, raw)
                                  : PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    if (values[OBSERVATION_UID] == NULL) {
        goto done;
    }
    raw = get(b, item, TAG_OBSERVATION_DATETIME);
    values[OBSERVATION_DATETIME] = raw ? call1(b, FALLBACK_ascii_text, raw)
                                       : PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    if (values[OBSERVATION_DATETIME] == NULL) {
        goto done;
    }
    PyObject *content = get(b, item, TAG_CONTENT_SEQUENCE);
    if (content == NULL) {
        if (PyErr_Occurred()) {
            goto done;
        }
        values[CHILDREN] = PyTuple_New(0);
    }
    else if (!PyList_CheckExact(content)) {
        status = TO_PYTHON;
        goto done;
    }
    else if (PyList_GET_SIZE(content) == 0) {
        values[CHILDREN] = PyTuple_New(0);
    }
    else {
        values[CHILDREN] = build_children(b, content, position, encodings);
    }
    if (values[CHILDREN] == NULL) {
        goto done;
    }

    /* The Value Type's own fields and the item */
    if (kind == NULL) {
        values[COMMON] = Py_NewRef(value_type_text);
        result = construct(&b->unknown, values);
        goto done;
    }
    const Constructor *make = &kind->make;
    switch (kind->kind) {
    case KIND_CONTAINER:
        status = container_fields(b, item, encodings, &values[COMMON]);
        break;
    case KIND_NUM: {
        int measured = 0;
        status = num_fields(b, item, encodings, &values[COMMON], &measured);
        if (!measured) {
            make = &kind->alternative;
        }
        break;
    }
    case KIND_CODE:
        status = code_of(b, get(b, item, TAG_CONCEPT_CODE_SEQUENCE), encodings, &values[COMMON]);
        break;
    case KIND_UID_VALUE:
    case KIND_TEXT_VALUE: {
        PyObject *value = PyDict_GetItemWithError(item, kind->tag);
        if (value == NULL) {
            values[COMMON] = PyErr_Occurred() ? NULL : Py_NewRef(b->empty_text);
        }
        else if (kind->kind == KIND_UID_VALUE) {
            values[COMMON] = or_empty(b, cached_text(b, b->uid_cache, FALLBACK_uid_text, value));
        }
        else {
            values[COMMON] = or_empty(b, call2(kind->function, value, encodings));
        }
        status = values[COMMON] == NULL ? FAILED : 0;
        break;
    }
    case KIND_REFERENCE:
        status = sop_reference(b, item, encodings, &values[COMMON]);
        break;
    case KIND_PYTHON: {
        PyObject *args[] = {item,
                            encodings,
                            values[POSITION],
                            values[RELATIONSHIP],
                            values[CONCEPT],
                            values[OBSERVATION_UID],
                            values[OBSERVATION_DATETIME],
                            values[CHILDREN]};
        result = PyObject_Vectorcall(kind->function, args, 8, NULL);
        goto done;
    }
    }
    if (status == 0) {
        result = construct(make, values);
    }

done:
    for (int i = 0; i < MAX_FIELDS; i++) {
        Py_XDECREF(values[i]);
    }
    Py_XDECREF(encodings);
    Py_XDECREF(value_type_text);
    if (status != TO_PYTHON) {
        return result;
    }
    assert(result == NULL);
to_python:
    /* A value of a type the scanner does not produce: the Python builder decides, from the start. */
    {
        PyObject *args[] = {item, position, parent};
        return PyObject_Vectorcall(b->fallbacks[FALLBACK_content_item], args, 3, NULL);
    }
}

/* `fast_reader._children(content, position, encodings)`: content is a non-empty list. */
static PyObject *
build_children(Builder *b, PyObject *content, PyObject *position, PyObject *encodings)
{
    if (Py_EnterRecursiveCall(" while building the SR content tree")) {
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(content);
    Py_ssize_t depth = PyTuple_GET_SIZE(position);
    PyObject *children = PyTuple_New(count);
    if (children == NULL) {
        Py_LeaveRecursiveCall();
        return NULL;
    }
    for (Py_ssize_t index = 0; index < count; index++) {
        PyObject *child_position = PyTuple_New(depth + 1);
        if (child_position == NULL) {
            Py_CLEAR(children);
            break;
        }
        for (Py_ssize_t i = 0; i < depth; i++) {
            PyTuple_SET_ITEM(child_position, i, Py_NewRef(PyTuple_GET_ITEM(position, i)));
        }
        PyObject *number = PyLong_FromSsize_t(index + 1);
        if (number == NULL) {
            Py_DECREF(child_position);
            Py_CLEAR(children);
            break;
        }
        PyTuple_SET_ITEM(child_position, depth, number);
        /* The list is the scanner's and is not changed while this runs; the size is read once, as
         * enumerate() would see it. A Python fallback could not shrink it without a bug elsewhere; the
         * bound check keeps even that safe. */
        if (index >= PyList_GET_SIZE(content)) {
            Py_DECREF(child_position);
            PyErr_SetString(PyExc_RuntimeError, "content sequence changed during the build");
            Py_CLEAR(children);
            break;
        }
        PyObject *child = build_item(b, PyList_GET_ITEM(content, index), child_position, encodings);
        Py_DECREF(child_position);
        if (child == NULL) {
            Py_CLEAR(children);
            break;
        }
        PyTuple_SET_ITEM(children, index, child);
    }
    Py_LeaveRecursiveCall();
    return children;
}

/* --- Builder.children -------------------------------------------------------------------------------- */

PyDoc_STRVAR(Builder_children_doc,
             "children($self, content, position, encodings, /)\n--\n\n"
             "The content items of `content` (a list of raw item dicts) under the item at `position` (a tuple\n"
             "of ints) whose encodings are `encodings`: a tuple equal to fast_reader._children's.");

static PyObject *
Builder_children(Builder *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "children() takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    if (self->code_cache == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Builder was not initialised");
        return NULL;
    }
    if (!PyList_CheckExact(args[0]) || !PyTuple_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "children() takes a list and a tuple");
        return NULL;
    }
    if (PyList_GET_SIZE(args[0]) == 0) {
        return PyTuple_New(0);
    }
    self->builds++;
    PyObject *children = build_children(self, args[0], args[1], args[2]);
    self->builds--;
    return children;
}

/* --- Builder.evidence ------------------------------------------------------------------------------- */

/* `dataset.get(tag) or []` of a sequence: 0 with a borrowed list (NULL when there is none), or TO_PYTHON. */
static int
items_of(const Builder *b, PyObject *dataset, int tag, PyObject **items)
{
    *items = get(b, dataset, tag);
    if (*items == NULL) {
        return PyErr_Occurred() ? FAILED : 0;
    }
    if (PyList_CheckExact(*items)) {
        return 0;
    }
    int truth = PyObject_IsTrue(*items);
    *items = NULL;
    return truth < 0 ? FAILED : truth ? TO_PYTHON : 0;
}

/* `_encodings(dataset, ...)` where only its failure matters: the evidence reads UIDs, whatever the encoding. */
static int
check_encodings(const Builder *b, PyObject *dataset)
{
    PyObject *encodings = encodings_of(b, dataset, Py_None);
    Py_XDECREF(encodings);
    return encodings == NULL ? FAILED : 0;
}

/* The instances of one study (a dict) into `instances`: 0, FAILED or TO_PYTHON. */
static int
study_evidence(const Builder *b, PyObject *study, PyObject *instances)
{
    PyObject *values[4] = {NULL, NULL, NULL, NULL}; /* study, series, SOP class, SOP instance UIDs */
    PyObject *series_items;
    int status = check_encodings(b, study);
    if (status == 0 && (values[0] = optional_text(b, study, TAG_STUDY_INSTANCE_UID, b->uid_cache,
                                                  FALLBACK_uid_text)) == NULL) {
        status = FAILED;
    }
    if (status == 0) {
        status = items_of(b, study, TAG_REFERENCED_SERIES_SEQUENCE, &series_items);
    }
    for (Py_ssize_t i = 0; status == 0 && series_items != NULL && i < PyList_GET_SIZE(series_items); i++) {
        PyObject *series = PyList_GET_ITEM(series_items, i), *instance_items;
        if (!PyDict_CheckExact(series)) {
            status = TO_PYTHON;
            break;
        }
        Py_CLEAR(values[1]);
        if ((status = check_encodings(b, series)) != 0 ||
            (values[1] = optional_text(b, series, TAG_SERIES_INSTANCE_UID, b->uid_cache, FALLBACK_uid_text)) ==
                NULL ||
            (status = items_of(b, series, TAG_REFERENCED_SOP_SEQUENCE, &instance_items)) != 0) {
            status = status ? status : FAILED;
            break;
        }
        for (Py_ssize_t j = 0; instance_items != NULL && j < PyList_GET_SIZE(instance_items); j++) {
            PyObject *instance = PyList_GET_ITEM(instance_items, j);
            if (!PyDict_CheckExact(instance)) {
                status = TO_PYTHON;
                break;
            }
            if ((status = check_encodings(b, instance)) != 0) {
                break;
            }
            values[3] = optional_text(b, instance, TAG_REFERENCED_SOP_INSTANCE_UID, b->uid_cache, FALLBACK_uid_text);
            if (values[3] == NULL) {
                status = FAILED;
                break;
            }
            if (values[3] == Py_None) {
                Py_CLEAR(values[3]);
                continue;
            }
            values[2] = or_empty(
                b, optional_text(b, instance, TAG_REFERENCED_SOP_CLASS_UID, b->uid_cache, FALLBACK_uid_text));
            PyObject *evidence = values[2] ? construct(&b->evidence_instance, values) : NULL;
            Py_CLEAR(values[2]);
            Py_CLEAR(values[3]);
            if (evidence == NULL || PyList_Append(instances, evidence) < 0) {
                Py_XDECREF(evidence);
                status = FAILED;
                break;
            }
            Py_DECREF(evidence);
        }
    }
    for (int i = 0; i < 4; i++) {
        Py_XDECREF(values[i]);
    }
    return status;
}

PyDoc_STRVAR(Builder_evidence_doc,
             "evidence($self, dataset, encodings, /)\n--\n\n"
             "The referenced instances of the Current Requested Procedure and Pertinent Other Evidence\n"
             "Sequences of `dataset`: a tuple equal to fast_reader._evidence's.");

static PyObject *
Builder_evidence(Builder *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "evidence() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (self->code_cache == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Builder was not initialised");
        return NULL;
    }
    if (!PyDict_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "evidence() takes a dict");
        return NULL;
    }
    PyObject *instances = PyList_New(0);
    if (instances == NULL) {
        return NULL;
    }
    self->builds++;
    int status = 0;
    static const int sequences[] = {TAG_CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE,
                                    TAG_PERTINENT_OTHER_EVIDENCE_SEQUENCE};
    for (int s = 0; status == 0 && s < 2; s++) {
        PyObject *studies;
        status = items_of(self, args[0], sequences[s], &studies);
        for (Py_ssize_t i = 0; status == 0 && studies != NULL && i < PyList_GET_SIZE(studies); i++) {
            PyObject *study = PyList_GET_ITEM(studies, i);
            status = PyDict_CheckExact(study) ? study_evidence(self, study, instances) : TO_PYTHON;
        }
    }
    PyObject *result = NULL;
    if (status == 0) {
        result = PyList_AsTuple(instances);
    }
    else if (status == TO_PYTHON) {
        /* A value of a type the scanner does not produce: the Python walk decides, from the start. */
        result = PyObject_Vectorcall(self->fallbacks[FALLBACK_evidence], args, 2, NULL);
    }
    self->builds--;
    Py_DECREF(instances);
    return result;
}

static PyMethodDef Builder_methods[] = {
    {"children", (PyCFunction)(void (*)(void))Builder_children, METH_FASTCALL, Builder_children_doc},
    {"evidence", (PyCFunction)(void (*)(void))Builder_evidence, METH_FASTCALL, Builder_evidence_doc},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(Builder_doc,
             "Builder(*, tags, fallbacks, code_tags, code_cache, uid_cache, ascii_cache, relationships, "
             "value_types, kinds, by_reference, unknown, sop_reference, evidence_instance, layouts, required)\n"
             "--\n\n"
             "Builds SR content items from fast_parser's raw data sets as fast_reader's Python builder does.\n"
             "`tags`: TAG_NAMES -> int tag; `fallbacks`: FALLBACK_NAMES -> the Python functions used for what\n"
             "is not done in C; `code_tags`: the tags of a Code Sequence item's full cache key; the caches:\n"
             "the process-wide dicts of fast_reader and fast_values; `relationships`: raw Relationship Type ->\n"
             "RelationshipType; `value_types`: raw Value Type -> text; `kinds`: Value Type text -> (KIND_*,\n"
             "class, tag, function); `by_reference`, ..., `evidence_instance`: those classes; `layouts`:\n"
             "class -> its fields in order, ((name, default), ...), `required` as the default of a field without.");

static PyTypeObject BuilderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sr2fhir_core.reading._tree.Builder",
    .tp_doc = Builder_doc,
    .tp_basicsize = sizeof(Builder),
    .tp_itemsize = 0,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Builder_init,
    .tp_dealloc = (destructor)Builder_dealloc,
    .tp_traverse = (traverseproc)Builder_traverse,
    .tp_clear = (inquiry)Builder_clear,
    .tp_methods = Builder_methods,
};

/* --- module ------------------------------------------------------------------------------------------ */

/* fast_reader refuses a build whose VERSION differs from the one it expects (a stale in-place build). */
#define TREE_VERSION 1

PyDoc_STRVAR(module_doc, "The content-tree builder of sr2fhir_core.reading.fast_reader, in C.");

static struct PyModuleDef tree_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "sr2fhir_core.reading._tree",
    .m_doc = module_doc,
    .m_size = -1,
};

static PyObject *
names_tuple(const char *const *names)
{
    Py_ssize_t count = 0;
    while (names[count] != NULL) {
        count++;
    }
    PyObject *tuple = PyTuple_New(count);
    for (Py_ssize_t i = 0; tuple != NULL && i < count; i++) {
        PyObject *name = PyUnicode_FromString(names[i]);
        if (name == NULL) {
            Py_CLEAR(tuple);
            break;
        }
        PyTuple_SET_ITEM(tuple, i, name);
    }
    return tuple;
}

static int
add_names(PyObject *module, const char *name, const char *const *names)
{
    PyObject *tuple = names_tuple(names);
    if (tuple == NULL) {
        return -1;
    }
    int failed = PyModule_AddObjectRef(module, name, tuple);
    Py_DECREF(tuple);
    return failed;
}

PyMODINIT_FUNC
PyInit__tree(void)
{
    if (PyType_Ready(&BuilderType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&tree_module);
    if (module == NULL) {
        return NULL;
    }
    static const struct {
        const char *name;
        int value;
    } constants[] = {
        {"VERSION", TREE_VERSION},
        {"KIND_CONTAINER", KIND_CONTAINER},
        {"KIND_NUM", KIND_NUM},
        {"KIND_CODE", KIND_CODE},
        {"KIND_UID_VALUE", KIND_UID_VALUE},
        {"KIND_TEXT_VALUE", KIND_TEXT_VALUE},
        {"KIND_REFERENCE", KIND_REFERENCE},
        {"KIND_PYTHON", KIND_PYTHON},
    };
    for (size_t i = 0; i < sizeof constants / sizeof constants[0]; i++) {
        if (PyModule_AddIntConstant(module, constants[i].name, constants[i].value) < 0) {
            Py_DECREF(module);
            return NULL;
        }
    }
    if (add_names(module, "TAG_NAMES", tag_names) < 0 || add_names(module, "FALLBACK_NAMES", fallback_names) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&BuilderType);
    if (PyModule_AddObject(module, "Builder", (PyObject *)&BuilderType) < 0) {
        Py_DECREF(&BuilderType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
