# Regenerates the torch reference values hard-coded in test/models/{posembed,vit}.test.ts (run once, offline; the
# tests do not need Python). Needs python3-torch (1.13) and the official sources on PYTHONPATH:
#   git -C <dinov2 mirror> archive HEAD dinov2/models dinov2/layers dinov2/__init__.py | tar -x -C REF
#   git -C <dino mirror> show HEAD:vision_transformer.py > REF/dino_vit.py; ... HEAD:utils.py > REF/utils.py
# then: PYTHONPATH=REF XFORMERS_DISABLED=1 python3 test/models/make_torch_reference.py
import sys, os, math, json
os.environ['XFORMERS_DISABLED']='1'
import numpy as np, torch
import torch.nn.functional as F
# torch 1.13 has no F.scaled_dot_product_attention (used by dinov2's Attention): the plain formula.
if not hasattr(F,'scaled_dot_product_attention'):
    def sdpa(q,k,v,attn_mask=None,dropout_p=0.0,is_causal=False):
        a=(q*(q.shape[-1]**-0.5))@k.transpose(-2,-1); return a.softmax(-1)@v
    F.scaled_dot_product_attention=sdpa
import warnings; warnings.filterwarnings('ignore')
from dinov2.models import vision_transformer as v2
import dino_vit as v1

def det(name, n):
    seed = sum((ord(c) * (i + 1)) for i, c in enumerate(name)) % 1000
    i = np.arange(n, dtype=np.uint64)
    h = (i * np.uint64(2654435761) + np.uint64(seed * 97)) & np.uint64(0xffffffff)
    h ^= h >> np.uint64(15)
    h = (h * np.uint64(2246822519)) & np.uint64(0xffffffff)
    h ^= h >> np.uint64(13)
    v = 0.04 * (h.astype(np.float64) / 2**32 - 0.5)
    if name.endswith('norm1.weight') or name.endswith('norm2.weight') or name == 'norm.weight':
        v = v + 1
    return v.astype(np.float32)

def fill(m):
    sd = m.state_dict()
    for k, t in sd.items():
        sd[k] = torch.from_numpy(det(k, t.numel()).reshape(t.shape))
    m.load_state_dict(sd)
    m.eval()

def image(shape):
    n = int(np.prod(shape))
    return torch.from_numpy(np.sin(0.37 * np.arange(n)).astype(np.float32).reshape(shape))

def fp(t, k=6):
    t = t.detach().double()
    return {'head': [round(float(x), 7) for x in t.flatten()[:k]], 'absmean': round(float(t.abs().mean()), 7), 'shape': list(t.shape)}

out = {}
with torch.no_grad():
    m = v2.DinoVisionTransformer(patch_size=14, embed_dim=384, depth=1, num_heads=6, img_size=518, init_values=1.0, block_chunks=0)
    fill(m)
    f = m.forward_features(image((2, 3, 56, 70)))
    out['v2_s14_scale_factor'] = {'cls': fp(f['x_norm_clstoken']), 'patch': fp(f['x_norm_patchtokens'][:, 3]), 'prenorm': fp(f['x_prenorm'])}
    m = v2.DinoVisionTransformer(patch_size=14, embed_dim=384, depth=1, num_heads=6, img_size=518, init_values=1.0, block_chunks=0, num_register_tokens=4, interpolate_antialias=True, interpolate_offset=0.0)
    fill(m)
    f = m.forward_features(image((1, 3, 42, 42)))
    out['v2_s14_reg4'] = {'cls': fp(f['x_norm_clstoken']), 'reg': fp(f['x_norm_regtokens']), 'patch': fp(f['x_norm_patchtokens'][:, 3]), 'prenorm': fp(f['x_prenorm'])}
    m = v1.VisionTransformer(patch_size=16, embed_dim=384, depth=1, num_heads=6, qkv_bias=True, norm_layer=__import__('functools').partial(torch.nn.LayerNorm, eps=1e-6))
    fill(m)
    x = image((1, 3, 40, 56))
    out['v1_s16'] = {'cls': fp(m(x)), 'attn': fp(m.get_last_selfattention(x)[0, :, 0]), 'gil': fp(m.get_intermediate_layers(x, 1)[0])}
print(json.dumps(out))

# Pos-embed interpolation cases of posembed.test.ts: grid g[i] = sin(1.3 i), [M, gh, gw, mode, values].
def grid(M): return torch.tensor([math.sin(1.3*i) for i in range(M*M)], dtype=torch.float32).reshape(1,1,M,M)
cases=[(4,6,5,'scale_factor'),(5,3,4,'scale_factor'),(4,2,3,'size'),(4,6,5,'size'),(4,2,3,'size_antialias'),(4,6,5,'size_antialias'),(6,4,2,'size_antialias')]
out=[]
for M,gh,gw,mode in cases:
  g=grid(M)
  if mode=='scale_factor': r=F.interpolate(g,scale_factor=((gh+0.1)/M,(gw+0.1)/M),mode='bicubic')
  else: r=F.interpolate(g,size=(gh,gw),mode='bicubic',antialias=mode=='size_antialias')
  out.append((M,gh,gw,mode,[round(float(x),7) for x in r.flatten()]))
for o in out: print(f"  [{o[0]}, {o[1]}, {o[2]}, '{o[3]}', {o[4]}],".replace("'", "'"))
