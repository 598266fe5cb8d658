#!/usr/bin/env python3
"""Re-checks the committed golden fixtures without transformers: an independent float64 forward
pass (make_golden.ref_forward) over each model file must give the same greedy tokens and logits
(tests/fixtures/golden/*/reference.*) and the same 32 greedy tokens for models/default
(tests/fixtures/golden/default_model/reference.json); prints the smallest top-1/top-2 logit
margin of the default model per prompt. Needs torch and numpy only (Debian python3-torch works):

    /usr/bin/python3 reference/gpu/check_golden.py
"""
import os, sys, json, struct
import numpy as np, torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_golden as mg
def load_st(path):
    b=open(path,'rb').read(); n=struct.unpack('<Q',b[:8])[0]; h=json.loads(b[8:8+n]); base=8+n; out={}
    for k,v in h.items():
        if k=='__metadata__': continue
        s,e=v['data_offsets']; raw=b[base+s:base+e]
        if v['dtype']=='F32': a=np.frombuffer(raw,np.float32)
        elif v['dtype']=='BF16': a=(np.frombuffer(raw,np.uint16).astype(np.uint32)<<16).view(np.float32)
        out[k]=torch.from_numpy(a.copy().reshape(v['shape']))
    return out
def params(cfg):
    rp=cfg.get('rope_parameters') or {}
    sc=cfg.get('rope_scaling')
    win=cfg.get('sliding_window') if cfg['model_type']=='mistral' or cfg.get('use_sliding_window') else None
    return dict(head_dim=cfg.get('head_dim') or cfg['hidden_size']//cfg['num_attention_heads'], theta=cfg['rope_theta'], scaling=sc, window=win, eps=cfg['rms_norm_eps'], layers=cfg['num_hidden_layers'], heads=cfg['num_attention_heads'], kv_heads=cfg['num_key_value_heads'], tied=cfg['tie_word_embeddings'])
for fam in ['llama','llama31','llama32','mistral','qwen2','qwen3','llama_bf16']:
    d=f'tests/fixtures/golden/{fam}/'
    cfg=json.load(open(d+'config.json')); ref=json.load(open(d+'reference.json')); L=load_st(d+'reference.safetensors')['logits']
    sd=load_st(d+'model.safetensors'); p=params(cfg)
    errs=[]; same=True
    for i,(pr,g) in enumerate(zip(ref['prompts'],ref['greedy'])):
        lg=mg.ref_forward(sd,p,pr+g[:-1])[len(pr)-1:]
        errs.append(float((lg-L[i].double()).norm()/L[i].double().norm()))
        same &= lg.argmax(-1).tolist()==g
    print(fam, 'greedy same:', same, 'max rel err %.2e'%max(errs))
d='models/default/'; cfg=json.load(open(d+'config.json')); sd=load_st(d+'model.safetensors'); p=params(cfg)
ref=json.load(open('tests/fixtures/golden/default_model/reference.json'))
for pr,g in zip(ref['prompts'],ref['greedy']):
    lg=mg.ref_forward(sd,p,pr+g[:-1])[len(pr)-1:]
    t=torch.topk(lg,2,-1).values; m=(t[:,0]-t[:,1])
    print('default greedy same:', lg.argmax(-1).tolist()==g, 'min margin %.5f at step %d'%(float(m.min()), int(m.argmin())))
