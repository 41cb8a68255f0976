/*
 * The ldl VapourSynth plugin: a thin shim between VapourSynth and the Python package vs_ldl.
 *
 * Policy (which functions exist, their arguments, formats, models, error messages) lives in
 * vs_ldl/_bridge.py. This file only moves things across:
 *   - at load time it registers the functions vs_ldl._bridge.functions() declares;
 *   - when one is invoked it passes the clip's video info and the arguments to
 *     vs_ldl._bridge.create(), which returns a filter object, the output format and size, and
 *     the frame properties the output must not inherit;
 *   - for each frame it hands the source and destination planes to filter.process() as
 *     memoryviews, holding the GIL only for that call.
 *
 * It links neither libpython nor libvapoursynth: Python's symbols come from the host process
 * (python itself, or the libpython that vspipe loads), VapourSynth's API comes as a pointer.
 * Only CPython's stable ABI (3.12) is used, so one build serves every later CPython.
 */

#define Py_LIMITED_API 0x030C0000
#include <Python.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "VapourSynth4.h"

#define BRIDGE_MODULE "vs_ldl._bridge"
#define ERROR_SIZE 2048

typedef struct {
    VSNode *node;
    VSVideoInfo vi; /* of the output */
    PyObject *filter; /* has .process(n, src_planes, dst_planes) */
    char **dropped_props; /* NULL-terminated: properties of the source the output must not carry */
} Instance;

typedef int (*IntFunction)(void);

static IntFunction python_function(const char *name) {
    IntFunction fn;
    void *address = dlsym(RTLD_DEFAULT, name);
    memcpy(&fn, &address, sizeof fn);
    return fn;
}

/* True when an initialised interpreter that is not shutting down lives in this process. Looked
 * up by name so that a host without Python (a C program using the core directly) gets a plugin
 * without functions instead of a crash. */
static int python_usable(void) {
    IntFunction initialized = python_function("Py_IsInitialized");
    if (!initialized || !initialized())
        return 0;
    IntFunction finalizing = python_function("Py_IsFinalizing"); /* CPython 3.13 and later */
    if (!finalizing)
        finalizing = python_function("_Py_IsFinalizing"); /* CPython 3.12 */
    return !(finalizing && finalizing());
}

/* Moves the raised Python exception's text into `buffer` and clears it. Needs the GIL. */
static void take_python_error(char *buffer, size_t size) {
    PyObject *error = PyErr_GetRaisedException();
    PyObject *text = error ? PyObject_Str(error) : NULL;
    const char *utf8 = text ? PyUnicode_AsUTF8AndSize(text, NULL) : NULL;
    snprintf(buffer, size, "%s", utf8 && utf8[0] ? utf8 : "vs_ldl failed without a message");
    Py_XDECREF(text);
    Py_XDECREF(error);
    PyErr_Clear();
}

static void free_strings(char **strings) {
    for (char **s = strings; s && *s; s++)
        free(*s);
    free(strings);
}

/* A tuple of str as a NULL-terminated array of copies, or NULL with a Python error set. */
static char **strings_of(PyObject *tuple) {
    Py_ssize_t count = PyTuple_Size(tuple);
    char **strings = count < 0 ? NULL : calloc(count + 1, sizeof *strings);
    for (Py_ssize_t i = 0; strings && i < count; i++) {
        const char *utf8 = PyUnicode_AsUTF8AndSize(PyTuple_GetItem(tuple, i), NULL);
        if (!utf8 || !(strings[i] = strdup(utf8))) {
            free_strings(strings);
            return NULL;
        }
    }
    return strings;
}

/* vs_ldl._bridge.<name>(*args); a new reference, or NULL with a Python error set. */
static PyObject *call_bridge(const char *name, PyObject *args) {
    if (!args)
        return NULL;
    PyObject *module = PyImport_ImportModule(BRIDGE_MODULE);
    PyObject *function = module ? PyObject_GetAttrString(module, name) : NULL;
    PyObject *result = function ? PyObject_CallObject(function, args) : NULL;
    Py_XDECREF(function);
    Py_XDECREF(module);
    Py_DECREF(args);
    return result;
}

/* The scalar int, float and string arguments as a dict; clips are passed apart. */
static PyObject *arguments_as_dict(const VSMap *in, const VSAPI *vsapi) {
    PyObject *dict = PyDict_New();
    for (int i = 0; dict && i < vsapi->mapNumKeys(in); i++) {
        const char *key = vsapi->mapGetKey(in, i);
        PyObject *value;
        switch (vsapi->mapGetType(in, key)) {
        case ptInt:
            value = PyLong_FromLongLong(vsapi->mapGetInt(in, key, 0, NULL));
            break;
        case ptFloat:
            value = PyFloat_FromDouble(vsapi->mapGetFloat(in, key, 0, NULL));
            break;
        case ptData:
            value = PyUnicode_DecodeUTF8(vsapi->mapGetData(in, key, 0, NULL), vsapi->mapGetDataSize(in, key, 0, NULL), "replace");
            break;
        default:
            continue;
        }
        if (!value || PyDict_SetItemString(dict, key, value) < 0)
            Py_CLEAR(dict);
        Py_XDECREF(value);
    }
    return dict;
}

static PyObject *video_info_as_dict(const VSVideoInfo *vi, const VSAPI *vsapi) {
    char name[32] = "";
    if (vi->format.colorFamily == cfUndefined || !vsapi->getVideoFormatName(&vi->format, name))
        snprintf(name, sizeof name, "variable");
    return Py_BuildValue("{s:i,s:i,s:i,s:L,s:L,s:i,s:i,s:i,s:i,s:i,s:s}", "width", vi->width, "height", vi->height,
                         "num_frames", vi->numFrames, "fps_num", (long long)vi->fpsNum, "fps_den", (long long)vi->fpsDen,
                         "color_family", vi->format.colorFamily, "sample_type", vi->format.sampleType, "bits",
                         vi->format.bitsPerSample, "subsampling_w", vi->format.subSamplingW, "subsampling_h",
                         vi->format.subSamplingH, "format_name", name);
}

/* [(memoryview, width, height, stride), ...] over the frame's planes. */
static PyObject *planes_as_views(const VSFrame *frame, VSFrame *writable, const VSAPI *vsapi) {
    int count = vsapi->getVideoFrameFormat(frame)->numPlanes;
    PyObject *planes = PyList_New(count);
    for (int p = 0; planes && p < count; p++) {
        int height = vsapi->getFrameHeight(frame, p);
        ptrdiff_t stride = vsapi->getStride(frame, p);
        char *data = writable ? (char *)vsapi->getWritePtr(writable, p) : (char *)vsapi->getReadPtr(frame, p);
        PyObject *view = PyMemoryView_FromMemory(data, stride * height, writable ? PyBUF_WRITE : PyBUF_READ);
        PyObject *plane = view ? Py_BuildValue("(Niin)", view, vsapi->getFrameWidth(frame, p), height, (Py_ssize_t)stride) : NULL;
        if (!plane || PyList_SetItem(planes, p, plane) < 0)
            Py_CLEAR(planes);
    }
    return planes;
}

/* Ends the views so that no Python object keeps pointing into frame memory. */
static void release_views(PyObject *planes) {
    for (Py_ssize_t p = 0; planes && p < PyList_Size(planes); p++) {
        PyObject *result = PyObject_CallMethod(PyTuple_GetItem(PyList_GetItem(planes, p), 0), "release", NULL);
        if (!result)
            PyErr_Clear();
        Py_XDECREF(result);
    }
}

static const VSFrame *VS_CC get_frame(int n, int reason, void *instance_data, void **frame_data, VSFrameContext *context,
                                      VSCore *core, const VSAPI *vsapi) {
    (void)frame_data;
    Instance *d = instance_data;
    if (reason == arInitial) {
        vsapi->requestFrameFilter(n, d->node, context);
        return NULL;
    }
    if (reason != arAllFramesReady)
        return NULL;

    const VSFrame *src = vsapi->getFrameFilter(n, d->node, context);
    VSFrame *dst = vsapi->newVideoFrame(&d->vi.format, d->vi.width, d->vi.height, src, core); /* props copied from src */
    VSMap *props = vsapi->getFramePropertiesRW(dst);
    for (char **key = d->dropped_props; *key; key++)
        vsapi->mapDeleteKey(props, *key);
    char error[ERROR_SIZE] = "";
    if (!python_usable()) {
        snprintf(error, sizeof error, "ldl: the Python interpreter has shut down");
    } else {
        PyGILState_STATE gil = PyGILState_Ensure();
        PyObject *src_planes = planes_as_views(src, NULL, vsapi);
        PyObject *dst_planes = src_planes ? planes_as_views(dst, dst, vsapi) : NULL;
        PyObject *result = dst_planes ? PyObject_CallMethod(d->filter, "process", "iOO", n, src_planes, dst_planes) : NULL;
        if (!result)
            take_python_error(error, sizeof error);
        Py_XDECREF(result);
        release_views(src_planes);
        release_views(dst_planes);
        Py_XDECREF(src_planes);
        Py_XDECREF(dst_planes);
        PyGILState_Release(gil);
    }
    vsapi->freeFrame(src);
    if (error[0]) {
        vsapi->setFilterError(error, context);
        vsapi->freeFrame(dst);
        return NULL;
    }
    return dst;
}

static void VS_CC free_instance(void *instance_data, VSCore *core, const VSAPI *vsapi) {
    (void)core;
    Instance *d = instance_data;
    if (python_usable()) { /* otherwise the interpreter, and the object with it, is gone */
        PyGILState_STATE gil = PyGILState_Ensure();
        Py_XDECREF(d->filter);
        PyGILState_Release(gil);
    }
    vsapi->freeNode(d->node);
    free_strings(d->dropped_props);
    free(d);
}

/* One create function serves every registered name; `user_data` is that name. */
static void VS_CC create(const VSMap *in, VSMap *out, void *user_data, VSCore *core, const VSAPI *vsapi) {
    const char *name = user_data;
    char error[ERROR_SIZE] = "";
    VSNode *node = vsapi->mapGetNode(in, "clip", 0, NULL);
    const VSVideoInfo *vi = vsapi->getVideoInfo(node);
    VSVideoInfo out_vi = *vi;
    PyObject *filter = NULL, *dropped = NULL;
    char **dropped_props = NULL;
    int color_family = 0, sample_type = 0, bits = 0;

    if (!python_usable()) {
        snprintf(error, sizeof error, "%s: the Python interpreter has shut down", name);
    } else {
        PyGILState_STATE gil = PyGILState_Ensure();
        PyObject *clip = video_info_as_dict(vi, vsapi);
        PyObject *arguments = clip ? arguments_as_dict(in, vsapi) : NULL;
        PyObject *result = arguments ? call_bridge("create", Py_BuildValue("(sOO)", name, clip, arguments)) : NULL;
        if (result && PyArg_ParseTuple(result, "OiiiiiO", &filter, &color_family, &sample_type, &bits, &out_vi.width,
                                       &out_vi.height, &dropped) && (dropped_props = strings_of(dropped)))
            Py_INCREF(filter);
        else {
            filter = NULL;
            take_python_error(error, sizeof error);
        }
        Py_XDECREF(result);
        Py_XDECREF(arguments);
        Py_XDECREF(clip);
        PyGILState_Release(gil);
    }
    if (!error[0] && !vsapi->queryVideoFormat(&out_vi.format, color_family, sample_type, bits, 0, 0, core))
        snprintf(error, sizeof error, "%s: vs_ldl asked for an invalid output format", name);
    if (error[0]) {
        if (filter) {
            PyGILState_STATE gil = PyGILState_Ensure();
            Py_DECREF(filter);
            PyGILState_Release(gil);
        }
        free_strings(dropped_props);
        vsapi->freeNode(node);
        vsapi->mapSetError(out, error);
        return;
    }

    Instance *d = malloc(sizeof *d);
    d->node = node;
    d->vi = out_vi;
    d->filter = filter;
    d->dropped_props = dropped_props;
    VSFilterDependency dependencies[] = {{node, rpStrictSpatial}};
    vsapi->createVideoFilter(out, name, &d->vi, get_frame, free_instance, fmParallel, dependencies, 1, d, core);
}

VS_EXTERNAL_API(void) VapourSynthPluginInit2(VSPlugin *plugin, const VSPLUGINAPI *vspapi) {
    vspapi->configPlugin("io.github.ldl-video", "ldl", "LDL super-resolution from ldl-video (functions defined in vs_ldl)",
                         VS_MAKE_VERSION(1, 0), VAPOURSYNTH_API_VERSION, 0, plugin);
    if (!python_usable())
        return;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *functions = call_bridge("functions", PyTuple_New(0));
    Py_ssize_t count = functions ? PyList_Size(functions) : -1;
    for (Py_ssize_t i = 0; i < count; i++) {
        const char *name, *args, *returns;
        if (!PyArg_ParseTuple(PyList_GetItem(functions, i), "sss", &name, &args, &returns))
            break;
        char *saved_name = strdup(name); /* the create function's user data, for the plugin's lifetime */
        vspapi->registerFunction(saved_name, args, returns, create, saved_name, plugin);
    }
    if (PyErr_Occurred()) {
        char error[ERROR_SIZE];
        take_python_error(error, sizeof error);
        fprintf(stderr, "ldl VapourSynth plugin: core.ldl is unusable, %s could not be loaded: %s\n", BRIDGE_MODULE, error);
    }
    Py_XDECREF(functions);
    PyGILState_Release(gil);
}
