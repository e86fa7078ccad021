// Scene description for the synthetic renderer: materials and three kinds of
// solid primitives in camera space (millimetres; the camera sits at the
// origin looking along +z, x right, y down):
//   - spheres (joints, occluders),
//   - round cones, the convex hull of two spheres of different radii
//     (finger bones tapering towards the tip, the palm's rim, the forearm,
//     sticks); equal radii give a capsule,
//   - slab faces: the flat face of a convex planar polygon thickened by a
//     half-thickness (the palm). add_slab() adds the face and the round
//     cones along its edges, whose union is exactly the polygon grown by a
//     ball, so the side walls need no primitive of their own.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "lgh/core/error.hpp"
#include "lgh/data/synthetic/hand_model.hpp"

namespace lgh {
namespace data {
namespace synthetic {

using Rgbf = std::array<float, 3>;  // linear-ish colour in [0, 1]

struct Material {
  Rgbf albedo{0.8f, 0.6f, 0.5f};
  // Where a primitive has a palmar axis, surfaces facing along it blend
  // towards this colour (palms and finger pads are lighter than the back of
  // the hand, a cue for telling palm from back).
  Rgbf albedo_palm{0.8f, 0.6f, 0.5f};
  bool hand = false;        // counted in the mask
  float grain = 0.f;        // per-pixel multiplicative albedo noise amplitude
  float stripe_period = 0;  // > 0: stripes of stripe_albedo along stripe_dir, this period (mm)
  Vec3 stripe_dir = Vec3::UnitX();
  Rgbf stripe_albedo{0.f, 0.f, 0.f};
};

enum class PrimKind : uint8_t { Sphere, RoundCone, SlabFace };

constexpr int kMaxSlabVertices = 8;

struct Primitive {
  PrimKind kind = PrimKind::Sphere;
  int material = 0;
  Vec3 a = Vec3::Zero(), b = Vec3::Zero();  // sphere: centre a; round cone: a -> b
  double ra = 0, rb = 0;                    // sphere: radius ra
  Vec3 palmar = Vec3::Zero();               // two-tone shading axis (zero: none)
  // Slab face: polygon (convex, planar), its unit normal and half thickness.
  std::array<Vec3, kMaxSlabVertices> polygon{};
  int polygon_size = 0;
  Vec3 normal = Vec3::Zero();
  double half_thickness = 0;
};

struct Scene {
  std::vector<Material> materials;
  std::vector<Primitive> primitives;
  uint32_t texture_seed = 0;  // seeds the per-pixel grain

  int add_material(const Material& m) {
    materials.push_back(m);
    return static_cast<int>(materials.size()) - 1;
  }

  void add_sphere(const Vec3& c, double r, int material, const Vec3& palmar = Vec3::Zero()) {
    check_material(material);
    LGH_CHECK(r > 0, "Scene::add_sphere: radius must be positive, got " << r);
    Primitive p;
    p.kind = PrimKind::Sphere;
    p.material = material;
    p.a = c;
    p.ra = r;
    p.palmar = palmar;
    primitives.push_back(p);
  }

  void add_round_cone(const Vec3& a, double ra, const Vec3& b, double rb, int material,
                      const Vec3& palmar = Vec3::Zero()) {
    check_material(material);
    LGH_CHECK(ra > 0 && rb > 0, "Scene::add_round_cone: radii must be positive, got " << ra << ", " << rb);
    // A cone whose one sphere swallows the other is just that sphere.
    const double len = (b - a).norm();
    if (len <= std::abs(ra - rb) + 1e-9) {
      add_sphere(ra >= rb ? a : b, std::max(ra, rb), material, palmar);
      return;
    }
    Primitive p;
    p.kind = PrimKind::RoundCone;
    p.material = material;
    p.a = a;
    p.b = b;
    p.ra = ra;
    p.rb = rb;
    p.palmar = palmar;
    primitives.push_back(p);
  }

  // A convex planar polygon grown by a ball of radius half_thickness.
  void add_slab(const Vec3* polygon, int n, double half_thickness, int material,
                const Vec3& palmar = Vec3::Zero()) {
    check_material(material);
    LGH_CHECK(n >= 3 && n <= kMaxSlabVertices,
              "Scene::add_slab: expected 3.." << kMaxSlabVertices << " vertices, got " << n);
    LGH_CHECK(half_thickness > 0, "Scene::add_slab: half thickness must be positive");
    Vec3 normal = Vec3::Zero();  // Newell's method: robust for any convex polygon
    for (int i = 0; i < n; ++i) {
      const Vec3& p = polygon[i];
      const Vec3& q = polygon[(i + 1) % n];
      normal += Vec3((p.y() - q.y()) * (p.z() + q.z()), (p.z() - q.z()) * (p.x() + q.x()),
                     (p.x() - q.x()) * (p.y() + q.y()));
    }
    LGH_CHECK(normal.norm() > 1e-12, "Scene::add_slab: degenerate polygon");
    Primitive p;
    p.kind = PrimKind::SlabFace;
    p.material = material;
    p.polygon_size = n;
    for (int i = 0; i < n; ++i) p.polygon[i] = polygon[i];
    p.normal = normal.normalized();
    p.half_thickness = half_thickness;
    p.palmar = palmar;
    primitives.push_back(p);
    for (int i = 0; i < n; ++i)
      add_round_cone(polygon[i], half_thickness, polygon[(i + 1) % n], half_thickness, material, palmar);
  }

 private:
  void check_material(int m) const {
    LGH_CHECK(m >= 0 && m < static_cast<int>(materials.size()),
              "Scene: material " << m << " does not exist (" << materials.size() << " defined)");
  }
};

}  // namespace synthetic
}  // namespace data
}  // namespace lgh
