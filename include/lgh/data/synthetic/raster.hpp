// The synthetic renderer: a z-buffer of analytic ray-primitive
// intersections with Lambert shading, and the per-joint visibility test.
//
// Pixel convention: pixel (x, y) has its centre at u = x, v = y (0-based),
// the convention of the soft-argmax (DESIGN.md §2), so the ray of pixel
// (x, y) is ((x - cx) / fx, (y - cy) / fy, 1). Rays are left unnormalised
// with a unit z component, which makes the ray parameter equal to the
// camera-space depth.
//
// Speed: each primitive only visits the pixels of its exact screen-space
// bounding box (the projection of a sphere has a closed-form box, a round
// cone's is the union of its two spheres', a face's that of its vertices),
// primitives are drawn nearest first and a pixel whose depth is already in
// front of a primitive's nearest point is skipped without intersecting.
// Intersections are solved in float about a per-primitive local origin on
// the ray (t0 = the primitive's depth), which keeps the quadratic's terms
// small enough for single precision at any camera distance. The normals are
// computed once per pixel, for the visible primitive only (deferred shading).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "lgh/core/config.hpp"
#include "lgh/core/error.hpp"
#include "lgh/data/image.hpp"
#include "lgh/data/sample.hpp"
#include "lgh/data/synthetic/scene.hpp"

namespace lgh {
namespace data {
namespace synthetic {

struct Camera {
  Intrinsics K;
  int width = 0, height = 0;

  // Pixel coordinates of a camera-space point (z > 0).
  std::array<double, 2> project(const Vec3& p) const {
    return {K.fx * p.x() / p.z() + K.cx, K.fy * p.y() / p.z() + K.cy};
  }
};

struct Lighting {
  Vec3 to_light = Vec3(0, 0, -1);  // unit direction towards a distant light (camera space)
  float ambient = 0.4f;
  float diffuse = 0.6f;
  Rgbf colour{1.f, 1.f, 1.f};
};

// Per-pixel results of a render, row-major, for inspection and tests.
struct RenderBuffers {
  std::vector<float> depth;        // camera-space z of the visible surface; +inf where empty
  std::vector<int32_t> primitive;  // index into Scene::primitives; -1 where empty
};

namespace detail {

// Avalanching 32-bit integer hash (lowbias32): cheap per-pixel noise whose
// seed comes from the sample's Philox stream.
inline uint32_t hash32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}
inline float hash_unit(uint32_t x) { return static_cast<float>(hash32(x) >> 8) * (1.0f / 16777216.0f); }

constexpr float kInf = std::numeric_limits<float>::infinity();

// A primitive with everything its intersection needs precomputed in float.
struct RasterPrim {
  PrimKind kind = PrimKind::Sphere;
  int source = 0;  // index in Scene::primitives
  int material = 0;
  int x0 = 0, x1 = 0, y0 = 0, y1 = 0;  // pixel box, half-open
  float zmin = 0;                      // nearest depth the primitive reaches
  float t0 = 0;                        // local ray origin depth
  float ax = 0, ay = 0, az = 0, ra = 0, ra2 = 0;
  float bax = 0, bay = 0, baz = 0, rb2 = 0;
  float m0 = 0, d2 = 0, rr_ra = 0, k0c = 0;
  float nx = 0, ny = 0, nz = 0, e = 0;  // slab: front face n·P = e, n away from the camera
  int nedges = 0;
  std::array<float, kMaxSlabVertices> ex{}, ey{}, ez{}, eg{};  // inside iff e·P >= g for every edge
  float px = 0, py = 0, pz = 0;                                // palmar axis
};

// Depth of the first intersection of the ray (dx, dy, 1) with a sphere.
inline float hit_sphere(const RasterPrim& p, float dx, float dy) {
  const float a = dx * dx + dy * dy + 1.f;
  const float ox = p.t0 * dx - p.ax, oy = p.t0 * dy - p.ay;  // oz = t0 - az = 0
  const float b = dx * ox + dy * oy;
  const float c = ox * ox + oy * oy - p.ra2;
  const float h = b * b - a * c;
  if (h < 0.f) return kInf;
  return p.t0 + (-b - std::sqrt(h)) / a;
}

// Round cone (convex hull of the spheres (A, ra) and (B, rb)). The lateral
// surface is the cone tangent to both spheres: with ba = B - A, rr = ra - rb,
// d2 = |ba|^2 - rr^2 and oa the ray origin relative to A, a point at
// parameter s lies on it where k2 s^2 + 2 k1 s + k0 = 0 and its axial
// coordinate Y = ba·(oa + s d) satisfies 0 <= Y - ra rr <= d2 (between the
// two tangency circles). Derivation in docs/synthetic.md.
inline float hit_round_cone(const RasterPrim& p, float dx, float dy) {
  const float a = dx * dx + dy * dy + 1.f;
  const float ox = p.t0 * dx - p.ax, oy = p.t0 * dy - p.ay;  // oa, with oa.z = 0
  const float m1 = p.bax * ox + p.bay * oy;
  const float m2 = p.bax * dx + p.bay * dy + p.baz;
  const float m3 = dx * ox + dy * oy;
  const float m5 = ox * ox + oy * oy;
  const float k2 = p.d2 * a - m2 * m2;
  const float k1 = p.d2 * m3 - m1 * m2 + m2 * p.rr_ra;
  const float k0 = p.d2 * m5 - m1 * m1 + 2.f * m1 * p.rr_ra + p.k0c;
  const float h = k1 * k1 - k0 * k2;
  float best = kInf;
  if (k2 > 0.f) {
    // The spheres lie inside the infinite cone: a ray that misses the cone
    // misses everything, and a valid first crossing is the entry point.
    if (h < 0.f) return kInf;
    const float s = (-k1 - std::sqrt(h)) / k2;
    const float y = m1 - p.rr_ra + s * m2;
    if (y >= 0.f && y <= p.d2) return p.t0 + s;
  } else if (h >= 0.f && k2 < 0.f) {
    // Ray steeper than the cone's generators: it is inside the double cone
    // at both ends and enters it again at the larger root, (-k1 - sqrt h)/k2
    // now; the smaller root is an exit. The entry may still be a cap.
    const float s = (-k1 - std::sqrt(h)) / k2;
    const float y = m1 - p.rr_ra + s * m2;
    if (y >= 0.f && y <= p.d2) best = s;
  }
  // End caps.
  const float ha = m3 * m3 - a * (m5 - p.ra2);
  if (ha >= 0.f) best = std::min(best, (-m3 - std::sqrt(ha)) / a);
  const float m6 = m3 - m2;              // d·(oa - ba)
  const float m7 = m5 - 2.f * m1 + p.m0;  // |oa - ba|^2
  const float hb = m6 * m6 - a * (m7 - p.rb2);
  if (hb >= 0.f) best = std::min(best, (-m6 - std::sqrt(hb)) / a);
  return best == kInf ? kInf : p.t0 + best;
}

inline float hit_slab_face(const RasterPrim& p, float dx, float dy) {
  const float nd = p.nx * dx + p.ny * dy + p.nz;
  if (nd <= 0.f) return kInf;
  const float t = p.e / nd;
  const float X = t * dx, Y = t * dy, Z = t;
  for (int k = 0; k < p.nedges; ++k)
    if (p.ex[k] * X + p.ey[k] * Y + p.ez[k] * Z < p.eg[k]) return kInf;
  return t;
}

inline float hit(const RasterPrim& p, float dx, float dy) {
  switch (p.kind) {
    case PrimKind::Sphere: return hit_sphere(p, dx, dy);
    case PrimKind::RoundCone: return hit_round_cone(p, dx, dy);
    case PrimKind::SlabFace: return hit_slab_face(p, dx, dy);
  }
  return kInf;
}

// Exact pixel-space box of a sphere's projection: the tangent planes through
// the camera's y (x) axis give x/z (y/z) = (c·z ± r·sqrt(c² + z² - r²)) / (z² - r²).
struct Box {
  double u0, u1, v0, v1;
  void merge(const Box& o) {
    u0 = std::min(u0, o.u0);
    u1 = std::max(u1, o.u1);
    v0 = std::min(v0, o.v0);
    v1 = std::max(v1, o.v1);
  }
};
inline Box sphere_box(const Vec3& c, double r, const Intrinsics& K) {
  const double z = c.z(), den = z * z - r * r;
  const double sx = std::sqrt(std::max(0.0, c.x() * c.x() + den));
  const double sy = std::sqrt(std::max(0.0, c.y() * c.y() + den));
  Box b;
  b.u0 = K.fx * (c.x() * z - r * sx) / den + K.cx;
  b.u1 = K.fx * (c.x() * z + r * sx) / den + K.cx;
  b.v0 = K.fy * (c.y() * z - r * sy) / den + K.cy;
  b.v1 = K.fy * (c.y() * z + r * sy) / den + K.cy;
  return b;
}

}  // namespace detail

// A scene prepared for one camera: render it, or ask what a ray sees. It
// keeps a reference to the scene's materials: the scene must outlive it.
// All methods are const and may run concurrently.
class Rasterizer {
 public:
  // Primitives closer to the camera plane than this (mm) are refused: the
  // generator keeps every primitive in front of the camera.
  static constexpr double kNear = 1.0;

  Rasterizer(const Scene& scene, const Camera& camera) : scene_(scene), cam_(camera) {
    LGH_CHECK(camera.width > 0 && camera.height > 0,
              "Rasterizer: image size must be positive, got " << camera.width << "x" << camera.height);
    LGH_CHECK(camera.K.fx > 0 && camera.K.fy > 0, "Rasterizer: focal lengths must be positive");
    prims_.reserve(scene.primitives.size());
    for (size_t i = 0; i < scene.primitives.size(); ++i) prepare(scene.primitives[i], static_cast<int>(i));
    std::sort(prims_.begin(), prims_.end(),
              [](const detail::RasterPrim& a, const detail::RasterPrim& b) { return a.zmin < b.zmin; });
  }

  // Depth of the first surface along the ray (dx, dy, 1), +inf if none;
  // `primitive` receives its index in the scene (-1 if none).
  float first_hit(double dx, double dy, int* primitive = nullptr) const {
    float best = detail::kInf;
    int who = -1;
    for (const auto& p : prims_) {
      if (p.zmin >= best) break;  // sorted by zmin: nothing further can be nearer
      const float t = detail::hit(p, static_cast<float>(dx), static_cast<float>(dy));
      if (t < best) {
        best = t;
        who = p.source;
      }
    }
    if (primitive) *primitive = who;
    return best;
  }

  // Renders over `rgb` (3 channels, the camera's size, holding the
  // background). `mask` (optional) becomes 1 channel, 255 on hand materials.
  void render(const Lighting& light, Image& rgb, Image* mask = nullptr, RenderBuffers* out = nullptr) const {
    const int W = cam_.width, H = cam_.height;
    LGH_CHECK(rgb.width == W && rgb.height == H && rgb.channels == 3,
              "Rasterizer::render: expected a " << W << "x" << H << "x3 background, got " << rgb.width << "x"
                                                << rgb.height << "x" << rgb.channels);
    const size_t n = static_cast<size_t>(W) * H;
    std::vector<float> depth(n, detail::kInf);
    std::vector<int32_t> id(n, -1);
    std::vector<float> ray_x(W), ray_y(H);
    for (int x = 0; x < W; ++x) ray_x[x] = static_cast<float>((x - cam_.K.cx) / cam_.K.fx);
    for (int y = 0; y < H; ++y) ray_y[y] = static_cast<float>((y - cam_.K.cy) / cam_.K.fy);

    for (int k = 0; k < static_cast<int>(prims_.size()); ++k) {
      const detail::RasterPrim& p = prims_[k];
      switch (p.kind) {
        case PrimKind::Sphere: scan(p, k, detail::hit_sphere, ray_x, ray_y, depth, id); break;
        case PrimKind::RoundCone: scan(p, k, detail::hit_round_cone, ray_x, ray_y, depth, id); break;
        case PrimKind::SlabFace: scan(p, k, detail::hit_slab_face, ray_x, ray_y, depth, id); break;
      }
    }
    if (mask) *mask = Image(W, H, 1, 0);
    shade(light, ray_x, ray_y, depth, id, rgb, mask);
    if (out) {
      for (auto& v : id)
        if (v >= 0) v = prims_[v].source;
      out->depth = std::move(depth);
      out->primitive = std::move(id);
    }
  }

  // Visibility of each joint (camera space, mm): false when it projects
  // outside the image or when a surface lies in front of the joint's own
  // flesh. The joint's flesh is a ball of radius `radius[j]` about it; a
  // surface counts as in front when the ray through the joint centre meets
  // it more than tolerance·radius[j] before entering that ball (so the palm
  // over an MCP, or the skin over a knuckle, does not hide the joint, while
  // another finger, the joint's own finger seen end-on, or an occluder do).
  std::array<bool, kNumJoints> joint_visibility(const std::array<Vec3, kNumJoints>& joints,
                                                const std::array<double, kNumJoints>& radius,
                                                double tolerance = 0.5) const {
    std::array<bool, kNumJoints> vis{};
    for (int j = 0; j < kNumJoints; ++j) {
      const Vec3& P = joints[j];
      if (!(P.z() > 0)) continue;
      const auto uv = cam_.project(P);
      if (!(uv[0] >= -0.5 && uv[0] < cam_.width - 0.5 && uv[1] >= -0.5 && uv[1] < cam_.height - 0.5)) continue;
      const double dist = P.norm();
      const double front = P.z() * (1.0 - radius[j] / dist);
      const double slack = tolerance * radius[j] * P.z() / dist;
      vis[j] = first_hit(P.x() / P.z(), P.y() / P.z()) >= front - slack;
    }
    return vis;
  }

 private:
  template <typename Hit>
  void scan(const detail::RasterPrim& p, int k, Hit hit, const std::vector<float>& ray_x,
            const std::vector<float>& ray_y, std::vector<float>& depth, std::vector<int32_t>& id) const {
    const int W = cam_.width;
    for (int y = p.y0; y < p.y1; ++y) {
      const float dy = ray_y[y];
      float* LGH_RESTRICT zrow = depth.data() + static_cast<size_t>(y) * W;
      int32_t* LGH_RESTRICT irow = id.data() + static_cast<size_t>(y) * W;
      for (int x = p.x0; x < p.x1; ++x) {
        if (zrow[x] <= p.zmin) continue;  // already something in front of the whole primitive
        const float t = hit(p, ray_x[x], dy);
        if (t < zrow[x]) {
          zrow[x] = t;
          irow[x] = k;
        }
      }
    }
  }

  void shade(const Lighting& light, const std::vector<float>& ray_x, const std::vector<float>& ray_y,
             const std::vector<float>& depth, const std::vector<int32_t>& id, Image& rgb, Image* mask) const {
    const int W = cam_.width, H = cam_.height;
    const float Lx = static_cast<float>(light.to_light.x()), Ly = static_cast<float>(light.to_light.y()),
                Lz = static_cast<float>(light.to_light.z());
    for (int y = 0; y < H; ++y) {
      for (int x = 0; x < W; ++x) {
        const size_t i = static_cast<size_t>(y) * W + x;
        const int k = id[i];
        if (k < 0) continue;
        const detail::RasterPrim& p = prims_[k];
        const Material& m = scene_.materials[p.material];
        const float t = depth[i];
        const float X = t * ray_x[x], Y = t * ray_y[y], Z = t;
        float nx, ny, nz;
        surface_normal(p, X, Y, Z, nx, ny, nz);
        Rgbf base = m.albedo;
        if (p.px != 0.f || p.py != 0.f || p.pz != 0.f) {
          const float w = std::min(1.f, std::max(0.f, 0.5f + 0.8f * (nx * p.px + ny * p.py + nz * p.pz)));
          for (int c = 0; c < 3; ++c) base[c] += w * (m.albedo_palm[c] - base[c]);
        }
        if (m.stripe_period > 0.f) {
          const float s = (X * float(m.stripe_dir.x()) + Y * float(m.stripe_dir.y()) + Z * float(m.stripe_dir.z())) /
                          m.stripe_period;
          if (s - std::floor(s) < 0.5f) base = m.stripe_albedo;
        }
        float g = 1.f;
        if (m.grain > 0.f)
          g += m.grain * (2.f * detail::hash_unit(static_cast<uint32_t>(i) * 2654435761u ^ scene_.texture_seed) - 1.f);
        // Lambert term, plus a mild darkening towards the silhouette (surfaces
        // seen at grazing angles), which reads as roundness.
        const float lambert = std::max(0.f, nx * Lx + ny * Ly + nz * Lz);
        const float inv_len = 1.f / std::sqrt(X * X + Y * Y + Z * Z);
        const float facing = std::max(0.f, -(nx * X + ny * Y + nz * Z) * inv_len);
        const float s = (light.ambient + light.diffuse * lambert) * (0.75f + 0.25f * facing) * g;
        uint8_t* px = rgb.at(x, y);
        for (int c = 0; c < 3; ++c) {
          const float v = base[c] * s * light.colour[c];
          px[c] = static_cast<uint8_t>(std::min(255.f, std::max(0.f, v * 255.f + 0.5f)));
        }
        if (mask && m.hand) mask->pixels[i] = 255;
      }
    }
  }

  static void surface_normal(const detail::RasterPrim& p, float X, float Y, float Z, float& nx, float& ny,
                             float& nz) {
    float vx, vy, vz;
    switch (p.kind) {
      case PrimKind::Sphere:
        vx = X - p.ax;
        vy = Y - p.ay;
        vz = Z - p.az;
        break;
      case PrimKind::RoundCone: {
        // The surface point touches the sphere of the family centred at
        // A + s·ba, s = (Y_axial - ra rr) / d2 clamped to [0, 1].
        const float qx = X - p.ax, qy = Y - p.ay, qz = Z - p.az;
        const float ya = qx * p.bax + qy * p.bay + qz * p.baz;
        const float s = std::min(1.f, std::max(0.f, (ya - p.rr_ra) / p.d2));
        vx = qx - s * p.bax;
        vy = qy - s * p.bay;
        vz = qz - s * p.baz;
        break;
      }
      default:
        nx = -p.nx;
        ny = -p.ny;
        nz = -p.nz;
        return;
    }
    const float inv = 1.f / std::max(1e-12f, std::sqrt(vx * vx + vy * vy + vz * vz));
    nx = vx * inv;
    ny = vy * inv;
    nz = vz * inv;
  }

  void prepare(const Primitive& q, int source) {
    detail::RasterPrim p;
    p.kind = q.kind;
    p.source = source;
    p.material = q.material;
    p.px = static_cast<float>(q.palmar.x());
    p.py = static_cast<float>(q.palmar.y());
    p.pz = static_cast<float>(q.palmar.z());
    detail::Box box{};
    switch (q.kind) {
      case PrimKind::Sphere: {
        check_in_front(q.a.z() - q.ra, source);
        box = detail::sphere_box(q.a, q.ra, cam_.K);
        p.zmin = static_cast<float>(q.a.z() - q.ra);
        set_a(p, q.a, q.ra);
        break;
      }
      case PrimKind::RoundCone: {
        check_in_front(std::min(q.a.z() - q.ra, q.b.z() - q.rb), source);
        box = detail::sphere_box(q.a, q.ra, cam_.K);
        box.merge(detail::sphere_box(q.b, q.rb, cam_.K));
        p.zmin = static_cast<float>(std::min(q.a.z() - q.ra, q.b.z() - q.rb));
        set_a(p, q.a, q.ra);
        const Vec3 ba = q.b - q.a;
        const double m0 = ba.squaredNorm(), rr = q.ra - q.rb;
        p.bax = static_cast<float>(ba.x());
        p.bay = static_cast<float>(ba.y());
        p.baz = static_cast<float>(ba.z());
        p.rb2 = static_cast<float>(q.rb * q.rb);
        p.m0 = static_cast<float>(m0);
        p.d2 = static_cast<float>(m0 - rr * rr);
        p.rr_ra = static_cast<float>(rr * q.ra);
        p.k0c = static_cast<float>(-m0 * q.ra * q.ra);
        break;
      }
      case PrimKind::SlabFace: {
        Vec3 n = q.normal;
        if (n.dot(q.polygon[0]) < 0) n = -n;  // point away from the camera
        const double e = n.dot(q.polygon[0]) - q.half_thickness;
        if (e <= kNear) return;  // camera level with the slab: its rim cones still draw it
        Vec3 centroid = Vec3::Zero();
        for (int i = 0; i < q.polygon_size; ++i) centroid += q.polygon[i];
        centroid /= q.polygon_size;
        box = {1e300, -1e300, 1e300, -1e300};
        double zmin = 1e300;
        for (int i = 0; i < q.polygon_size; ++i) {
          const Vec3 v = q.polygon[i] - q.half_thickness * n;
          check_in_front(v.z(), source);
          zmin = std::min(zmin, v.z());
          const auto uv = cam_.project(v);
          box.merge({uv[0], uv[0], uv[1], uv[1]});
          const Vec3 edge = q.polygon[(i + 1) % q.polygon_size] - q.polygon[i];
          Vec3 m = n.cross(edge);
          if (m.dot(centroid - q.polygon[i]) < 0) m = -m;
          p.ex[i] = static_cast<float>(m.x());
          p.ey[i] = static_cast<float>(m.y());
          p.ez[i] = static_cast<float>(m.z());
          p.eg[i] = static_cast<float>(m.dot(q.polygon[i]));
        }
        p.nedges = q.polygon_size;
        p.nx = static_cast<float>(n.x());
        p.ny = static_cast<float>(n.y());
        p.nz = static_cast<float>(n.z());
        p.e = static_cast<float>(e);
        p.zmin = static_cast<float>(zmin);
        break;
      }
    }
    // Pixel centres sit at integers; keep those inside the box (with a hair
    // of slack for rounding).
    p.x0 = std::max(0, static_cast<int>(std::ceil(box.u0 - 1e-3)));
    p.x1 = std::min(cam_.width, static_cast<int>(std::floor(box.u1 + 1e-3)) + 1);
    p.y0 = std::max(0, static_cast<int>(std::ceil(box.v0 - 1e-3)));
    p.y1 = std::min(cam_.height, static_cast<int>(std::floor(box.v1 + 1e-3)) + 1);
    if (p.x0 >= p.x1 || p.y0 >= p.y1) {
      p.x0 = p.x1 = p.y0 = p.y1 = 0;  // off screen: still answers rays, draws nothing
    }
    prims_.push_back(p);
  }

  static void set_a(detail::RasterPrim& p, const Vec3& a, double r) {
    p.ax = static_cast<float>(a.x());
    p.ay = static_cast<float>(a.y());
    p.az = static_cast<float>(a.z());
    p.t0 = p.az;
    p.ra = static_cast<float>(r);
    p.ra2 = static_cast<float>(r * r);
  }

  static void check_in_front(double zmin, int source) {
    LGH_CHECK(zmin > kNear, "Rasterizer: primitive " << source << " reaches to depth " << zmin
                                                     << " mm; every primitive must lie in front of the camera (z > "
                                                     << kNear << " mm)");
  }

  const Scene& scene_;
  Camera cam_;
  std::vector<detail::RasterPrim> prims_;
};

}  // namespace synthetic
}  // namespace data
}  // namespace lgh
