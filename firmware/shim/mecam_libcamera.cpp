// ME_CAM's libcamera shim: the few libcamera calls the service needs behind a C API,
// so Rust needs no C++ bindings and the code builds against Debian's libcamera 0.0.3
// and Buildroot's 0.7.x alike. The one API difference between them, Transform versus
// Orientation, is handled below on libcamera/version.h.

#include "mecam_libcamera.h"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <mutex>
#include <vector>

#include <libcamera/libcamera.h>
#include <libcamera/version.h>

using namespace libcamera;

#if LIBCAMERA_VERSION_MAJOR > 0 || LIBCAMERA_VERSION_MINOR >= 2
#define MECAM_HAS_ORIENTATION 1
#endif

struct mecam_cam {
	std::shared_ptr<Camera> camera;
	std::unique_ptr<CameraConfiguration> config;
	std::unique_ptr<FrameBufferAllocator> allocator;
	std::vector<std::unique_ptr<Request>> requests;
	Stream *stream = nullptr;
	mecam_frame_cb cb = nullptr;
	void *user = nullptr;
	uint32_t stride = 0;
	bool running = false;
};

namespace {

// libcamera allows one CameraManager per process; it lives until exit.
std::mutex manager_lock;
CameraManager *manager = nullptr;

void set_err(char *err, size_t len, const char *msg)
{
	if (err && len)
		std::snprintf(err, len, "%s", msg);
}

// One camera is open at a time (requestCompleted passes no user pointer).
std::atomic<mecam_cam *> active{ nullptr };

void on_request_completed(Request *request)
{
	mecam_cam *cam = active.load();
	if (!cam || !cam->cb || request->status() == Request::RequestCancelled)
		return;
	FrameBuffer *buffer = request->findBuffer(cam->stream);
	if (!buffer || buffer->planes().empty())
		return;
	const StreamConfiguration &sc = cam->config->at(0);
	const FrameBuffer::Plane &plane = buffer->planes()[0];
	// I420 planes share one dmabuf: the frame spans from the first plane's offset
	// to the end of the last.
	uint32_t length = 0;
	for (const FrameBuffer::Plane &p : buffer->planes())
		length = p.offset + p.length - plane.offset;
	mecam_frame f{};
	f.cookie = request->cookie();
	f.fd = plane.fd.get();
	f.offset = plane.offset;
	f.length = length;
	f.width = sc.size.width;
	f.height = sc.size.height;
	f.stride = sc.stride;
	f.timestamp_ns = buffer->metadata().timestamp;
	f.sequence = buffer->metadata().sequence;
	cam->cb(cam->user, &f);
}

} // namespace

extern "C" int mecam_cam_open(mecam_cam **out, char *err, size_t err_len)
{
	std::lock_guard<std::mutex> guard(manager_lock);
	if (!manager) {
		manager = new CameraManager();
		if (manager->start() < 0) {
			delete manager;
			manager = nullptr;
			set_err(err, err_len, "libcamera CameraManager failed to start");
			return -EIO;
		}
	}
	if (active) {
		set_err(err, err_len, "a camera is already open in this process");
		return -EBUSY;
	}
	if (manager->cameras().empty()) {
		set_err(err, err_len, "no camera found");
		return -ENODEV;
	}
	std::shared_ptr<Camera> camera = manager->cameras()[0];
	if (camera->acquire() < 0) {
		set_err(err, err_len, "the camera is in use by another process");
		return -EBUSY;
	}
	auto *cam = new mecam_cam();
	cam->camera = camera;
	active = cam;
	*out = cam;
	return 0;
}

extern "C" int mecam_cam_configure(mecam_cam *cam, uint32_t width, uint32_t height,
				   uint32_t buffers, uint32_t rotation, uint32_t *out_width,
				   uint32_t *out_height, uint32_t *out_stride, char *err,
				   size_t err_len)
{
	cam->config = cam->camera->generateConfiguration({ StreamRole::VideoRecording });
	if (!cam->config || cam->config->empty()) {
		set_err(err, err_len, "camera offers no video stream");
		return -EINVAL;
	}
	StreamConfiguration &sc = cam->config->at(0);
	sc.pixelFormat = formats::YUV420;
	sc.size = Size(width, height);
	sc.bufferCount = buffers;
	if (rotation != 0 && rotation != 180) {
		set_err(err, err_len, "rotation must be 0 or 180");
		return -EINVAL;
	}
#ifdef MECAM_HAS_ORIENTATION
	cam->config->orientation = rotation == 180 ? Orientation::Rotate180 : Orientation::Rotate0;
#else
	cam->config->transform = rotation == 180 ? Transform::Rot180 : Transform::Identity;
#endif
	if (cam->config->validate() == CameraConfiguration::Invalid) {
		set_err(err, err_len, "camera rejected the stream configuration");
		return -EINVAL;
	}
	if (sc.pixelFormat != formats::YUV420) {
		set_err(err, err_len, "camera cannot produce YUV420");
		return -EINVAL;
	}
	if (cam->camera->configure(cam->config.get()) < 0) {
		set_err(err, err_len, "camera configure failed");
		return -EIO;
	}
	cam->stream = sc.stream();
	cam->stride = sc.stride;
	*out_width = sc.size.width;
	*out_height = sc.size.height;
	*out_stride = sc.stride;
	return 0;
}

extern "C" int mecam_cam_start(mecam_cam *cam, mecam_frame_cb cb, void *user, char *err,
			       size_t err_len)
{
	if (!cam->stream) {
		set_err(err, err_len, "configure the camera before starting it");
		return -EINVAL;
	}
	cam->allocator = std::make_unique<FrameBufferAllocator>(cam->camera);
	if (cam->allocator->allocate(cam->stream) < 0) {
		set_err(err, err_len, "cannot allocate camera buffers");
		return -ENOMEM;
	}
	cam->requests.clear();
	uint64_t cookie = 0;
	for (const std::unique_ptr<FrameBuffer> &buffer : cam->allocator->buffers(cam->stream)) {
		std::unique_ptr<Request> request = cam->camera->createRequest(cookie++);
		if (!request || request->addBuffer(cam->stream, buffer.get()) < 0) {
			set_err(err, err_len, "cannot create a capture request");
			return -ENOMEM;
		}
		cam->requests.push_back(std::move(request));
	}
	cam->cb = cb;
	cam->user = user;
	cam->camera->requestCompleted.connect(on_request_completed);
	if (cam->camera->start() < 0) {
		set_err(err, err_len, "camera start failed");
		return -EIO;
	}
	cam->running = true;
	for (std::unique_ptr<Request> &request : cam->requests)
		cam->camera->queueRequest(request.get());
	return 0;
}

extern "C" int mecam_cam_requeue(mecam_cam *cam, uint64_t cookie)
{
	if (!cam->running || cookie >= cam->requests.size())
		return -EINVAL;
	Request *request = cam->requests[cookie].get();
	request->reuse(Request::ReuseBuffers);
	return cam->camera->queueRequest(request);
}

extern "C" void mecam_cam_stop(mecam_cam *cam)
{
	if (!cam->running)
		return;
	cam->running = false;
	cam->camera->stop();
	cam->camera->requestCompleted.disconnect(on_request_completed);
	cam->cb = nullptr;
}

extern "C" void mecam_cam_close(mecam_cam *cam)
{
	if (!cam)
		return;
	mecam_cam_stop(cam);
	cam->requests.clear();
	cam->allocator.reset();
	cam->camera->release();
	std::lock_guard<std::mutex> guard(manager_lock);
	if (active == cam)
		active = nullptr;
	delete cam;
}
