/* C API of ME_CAM's libcamera shim. Rust binds these by hand (camera/libcamera/ffi.rs);
 * keep the two in step. Every function returns 0 on success or a negative errno and,
 * where it takes `err`, writes a one-line reason there. */
#ifndef MECAM_LIBCAMERA_H
#define MECAM_LIBCAMERA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mecam_cam mecam_cam;

/* One completed frame: a dmabuf (fd, offset, length) of an I420 image whose luma rows
 * are `stride` bytes apart. Valid until mecam_cam_requeue(cookie). */
typedef struct mecam_frame {
	uint64_t cookie;
	int fd;
	uint32_t offset;
	uint32_t length;
	uint32_t width;
	uint32_t height;
	uint32_t stride;
	uint64_t timestamp_ns;
	uint64_t sequence;
} mecam_frame;

/* Runs on libcamera's thread: copy the struct out and return quickly. */
typedef void (*mecam_frame_cb)(void *user, const mecam_frame *frame);

/* Starts the process-wide CameraManager (once) and acquires the first camera.
 * -ENODEV with "no camera found" when there is none. */
int mecam_cam_open(mecam_cam **out, char *err, size_t err_len);

/* Asks for an I420 stream near width×height with `buffers` buffers, rotated by
 * 0 or 180 degrees. Writes back what the pipeline granted. */
int mecam_cam_configure(mecam_cam *cam, uint32_t width, uint32_t height, uint32_t buffers,
			uint32_t rotation, uint32_t *out_width, uint32_t *out_height,
			uint32_t *out_stride, char *err, size_t err_len);

int mecam_cam_start(mecam_cam *cam, mecam_frame_cb cb, void *user, char *err, size_t err_len);

/* Gives the frame's buffer back to the camera. */
int mecam_cam_requeue(mecam_cam *cam, uint64_t cookie);

void mecam_cam_stop(mecam_cam *cam);
void mecam_cam_close(mecam_cam *cam);

#ifdef __cplusplus
}
#endif
#endif
