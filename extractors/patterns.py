"""Curated cue patterns for the offline extractor, kept as data.

Every pattern runs over one *normalised* sentence (lower-cased, whitespace collapsed, typographic quotes
mapped to ASCII; see :mod:`extractors.segmenter`). A pattern is ``(id, regex, weight, flags)``:

- ``weight`` is the prior precision of the cue (0-1): how often an account manager would agree that a
  sentence with this cue expresses the type. It becomes the base confidence; :mod:`extractors.rules`
  then lowers it for hedging, reported speech and questions.
- flags: ``"selfneg"`` the pattern already contains its negation ("will not renew"), so a negator in
  front of it does not cancel it; ``"ask"`` the cue is a request, so a question does not weaken it;
  ``"weak"`` the cue alone is not enough in short informal chat text (it needs a second cue there);
  ``"chat"`` the cue only applies to chat/ticket messages, stated not asked; ``"svc"`` the sentence must
  also name a product or service (SERVICE_CONTEXT).

Macros in ``{braces}`` keep inflections and contractions in one place. Regexes use only
non-capturing groups (checked at load time) so a type's patterns can be compiled into one alternation.
"""

from __future__ import annotations

from typing import Final

MACROS: Final[dict[str, str]] = {
    # negated auxiliaries, with and without apostrophes (tweets drop them)
    "NOT": r"(?:not|never|n't|nt|cannot|cant|can not)",
    "NEGAUX": (
        r"(?:(?:do|does|did|is|are|was|were|has|have|had|wo|would|could|should|ca|must)(?:n't|nt)"
        r"|(?:do|does|did|is|are|was|were|has|have|had|will|would|could|can|should|must) not"
        r"|cannot|cant|wont|dont|doesnt|didnt|isnt|havent|hasnt|never)"
    ),
    "MEETING": (
        r"(?:meeting|call|conference call|review|session|appointment|conference|visit|demo|presentation|"
        r"workshop|lunch|dinner|breakfast|qbr|trip|interview|briefing|sync|catch-?up|get-?together|forum)s?"
    ),
    "ACCOUNTOBJ": r"(?:account|subscription|contract|membership|profile|service|plan|user ?id)s?",
    "EXEC": (
        r"(?:ceo|cfo|cto|coo|cio|president|chairman|chairwoman|chair|vice president|vp|svp|evp|executive sponsor|"
        r"executives?|chief \w+ officer|managing director|senior management|leadership team|board members?|"
        r"founder|owner)"
    ),
    "PRODUCT": (
        r"(?:app|website|site|page|account|order|item|product|device|phone|laptop|card|service|system|software|"
        r"update|feature|tool|platform|connection|internet|wifi|tv|box|router|printer|package|parcel|delivery)"
    ),
}

# fmt: off
PATTERNS: Final[dict[str, list[tuple[str, str, float, str]]]] = {
    "churn_intent": [
        ("cancel_account", r"\b(?:cancel|close|delete|terminate|remove|deactivate|end|erase|shut down)(?:s|ed|led|ing|ling)? (?:down )?(?:my|our|the|this|that|an|a|your)? ?(?:[@#]?\w+ )?{ACCOUNTOBJ}\b", 0.85, "ask"),
        ("dont_want_account", r"\b{NEGAUX} (?:want|need) (?:my|our|this|the) (?:\w+ )?{ACCOUNTOBJ}(?: anymore| any more)?\b", 0.8, "selfneg ask"),
        ("not_renew", r"\b(?:{NEGAUX}|will not|wont|decided not to|not going to|do not plan to|don't plan to|no longer plan to|not) (?:be )?renew(?:ing|al)?\b", 0.9, "selfneg"),
        ("non_renewal", r"\bnon-?renewal\b", 0.8, ""),
        ("get_rid_account", r"\bget rid of (?:my|our|this) (?:\w+ )?{ACCOUNTOBJ}\b", 0.8, "ask"),
        ("downgrade", r"\bdowngrad(?:e|ed|ing)\b", 0.65, ""),
        ("reduce_seats", r"\b(?:reduc|cut|drop|lower)(?:e|es|ed|ing)? (?:the number of |our |some |\d+ )?(?:seats|licen[cs]es|users)\b", 0.75, ""),
        ("take_business_elsewhere", r"\b(?:take|taking|took) (?:our|my) business elsewhere\b", 0.9, ""),
        ("leave_vendor", r"\b(?:leav|quit|ditch|dump|drop)(?:e|ing|ed|ping|ped)? (?:you guys|your (?:service|company|product|platform))\b", 0.75, ""),
        ("stop_using", r"\b(?:stop|stopped|stopping|cease|ceasing) (?:using|paying for|our subscription)\b", 0.7, ""),
        ("never_again", r"\bnever (?:buy|buying|shop|shopping|use|using|order|ordering|fly|flying)(?:ing)? (?:\w+ ){0,2}(?:again|anymore)\b", 0.7, "selfneg"),
    ],
    "payment_issue": [
        ("refund_request", r"\b(?:get|request|want|need|ask for|asking for|claim|obtain|demand|receive|issue|process|give|owe|like|'d like|would like)\w* (?:me |us )?(?:a |my |the |an |our |for a |for my )?(?:full |partial |\w+ )?(?:refund|reimbursement|money back|chargeback)\b(?! polic)", 0.8, "ask"),
        ("refund_me", r"\b(?:refund|reimburse)(?:ed)? (?:me|us|my money)\b", 0.8, "ask"),
        ("payment_problem", r"\b(?:problem|issue|error|trouble|difficult(?:y|ies))s? (?:\w+ ){0,6}(?:pay(?:ing|ment)?|billing|bill|invoice|charge|card|checkout)\b", 0.8, "ask"),
        ("payment_failed", r"\b(?:payment|card|transaction|billing|invoice|charge)s? (?:\w+ ){0,2}(?:problem|issue|error|fail\w*|declin\w*|reject\w*|dispute\w*|bounced)s?\b", 0.8, "ask"),
        ("charged_wrongly", r"\b(?:charged|billed) (?:me |us )?(?:twice|double|anyway|again|wrongly|incorrectly|for (?:something|nothing)|too much|without)\b", 0.85, ""),
        ("double_charge", r"\b(?:double[- ]charg\w*|overcharg\w*|over-charg\w*|unauthori[sz]ed (?:charge|payment|transaction|debit)s?)\b", 0.85, ""),
        ("not_paid", r"\b(?:(?:has|have|had)(?:n't| not) (?:yet )?been paid|not (?:yet )?been paid|(?:unpaid|overdue|past due|outstanding|late) (?:invoice|bill|balance|amount|payment)s?|payment (?:is |was |has been )?(?:late|overdue|delayed|past due|missing))\b", 0.85, "selfneg"),
        ("invoice_dispute", r"\bdisput(?:e|es|ed|ing) (?:the |an |this |our |your )?(?:invoice|charge|bill|payment)s?\b", 0.85, ""),
        ("cant_pay", r"\b(?:can't|cannot|cant|unable to|couldn't|could not|not able to) (?:make|complete|process|submit) (?:a |the |my |an )?(?:\w+ )?(?:payment|purchase|transaction)\b|\b(?:{NEGAUX}) (?:\w+ )?(?:received?|got|get) (?:my|the|an?|any) (?:\w+ )?(?:invoice|bill|receipt|statement)s?\b", 0.7, "selfneg ask"),
        ("cash_flow", r"\b(?:cash ?flow|liquidity) (?:problem|issue|difficult\w*|crunch|crisis|shortfall)s?\b", 0.7, ""),
        ("debt_trouble", r"\bdifficult\w* (?:in )?(?:meeting|paying|servicing) (?:\w+ )?(?:debt|payment|obligation)s?\b", 0.7, ""),
        ("money_not_returned", r"\b(?:still )?(?:{NEGAUX}) (?:\w+ )?(?:received|got|gotten|seen) (?:my|the|our) (?:refund|money|credit|reimbursement)\b", 0.8, "selfneg"),
    ],
    "escalation": [
        ("file_complaint", r"\b(?:file|lodge|make|submit|raise|register|open|put in|log)\w* (?:a |an )?(?:formal |consumer |official |written )?(?:complaint|grievance)\b", 0.85, "ask"),
        ("want_complain", r"\b(?:want|wanna|need|would like|'d like|going) to (?:complain|make a complaint|escalate)\b", 0.85, "ask"),
        ("complaint_about", r"\bcomplain(?:t|ts|ing|ed)? (?:about|against|to|regarding)\b", 0.7, "ask"),
        ("speak_human", r"\b(?:speak|talk|chat|get in touch|contact|connect me|put me through|transfer me)\w* (?:with |to )?(?:a |an |some |your |the )?(?:real |live |actual )?(?:human(?: being| agent)?|person|someone|somebody|manager|supervisor|representative|rep|live agent|real agent|operator)\b(?! (?:about|regarding) (?:my|the) (?:order|invoice|delivery))", 0.8, "ask"),
        ("not_helping", r"\b(?:you(?:'re| are|re| aren't| arent)? not (?:helping|helpful|listening)|you (?:aren't|arent|are not) help\w*|(?:this|that)(?:'s| is) not help\w*|no help at all|not helping)\b", 0.8, "selfneg"),
        ("dont_understand_you", r"\bi (?:{NEGAUX}) understand (?:you|what you)\b", 0.6, "selfneg"),
        ("escalate", r"\bescalat(?:e|ed|es|ing|ion)\b", 0.75, ""),
        ("urgent", r"\b(?:urgent(?:ly)?|asap|as soon as possible|immediately|critical (?:issue|problem|situation)|top priority|emergency)\b", 0.5, "weak"),
        ("unacceptable", r"\b(?:(?:this|it|that)(?:'s| is) (?:totally |completely |simply |absolutely )?unacceptable|demand (?:a |an |that )|i demand)\b", 0.7, ""),
        ("legal_threat", r"\b(?:lawsuit|legal action|sue (?:you|them)|suing|small claims|trading standards|better business bureau|bbb|ombudsman|report (?:you|this) to)\b", 0.75, ""),
        ("management_attention", r"\b(?:bring|brought|raise|raised|take|taking) (?:this|it) (?:up )?(?:to|with) (?:the attention of )?(?:management|your (?:manager|boss|ceo|supervisor)|senior|the (?:ceo|board|top))\b", 0.8, ""),
        ("please_act", r"\b(?:please|pls|plz|kindly) (?:\w+ )?(?:fix|sort|do something|look into|resolve|respond|reply|get back|refund|replace|stop)\b", 0.55, "ask chat svc"),
        ("fix_now", r"\b(?:fix|sort|resolve|sort out) (?:this|it)(?: out)? (?:now|asap|immediately|today|right now)\b|\bsort (?:it|this) out\b", 0.7, "ask"),
        ("bad_service_tag", r"#(?:badservice|fail|epicfail|worstservice|customerservicefail|nothappy|disappointed|unhappy|shameonyou)\b", 0.8, ""),
    ],
    "negative_sentiment": [
        ("why_so", r"\bwhy (?:is|does|do|did|are|can't|cant|won't|wont|isn't|isnt|doesn't|doesnt|would|must|the hell|on earth) (?:\w+ ){0,6}(?:so|still|not|never|always|n't|nt|again|impossible|hard|difficult)\b", 0.55, "selfneg"),
        ("what_a_joke", r"\b(?:what a (?:joke|mess|shame|disgrace|waste|nightmare|rip-?off|farce)|thanks for nothing|how hard (?:is|can) it be|is (?:this|that) (?:really|seriously) (?:what|how))\b", 0.7, ""),
        ("ripping_off", r"\b(?:ripp(?:ing|ed) (?:\w+ )?off|rip-?off|scam(?:med|ming)?|conned|cheated|mislead\w*|misled|lied to)\b", 0.7, ""),
    ],
    "product_gap": [
        ("not_working", r"\b(?:{NEGAUX}|not|still not|still won't|still wont|won't|wont) (?:\w+ )?(?:work|working|load|loading|open|opening|connect|connecting|sync|syncing|print|start|boot|charge|charging|respond|responding|function|functioning|display|play|playing|install|update|updating|upload|download|downloading|stream|streaming|turn on|power on)\b", 0.75, "selfneg"),
        ("unable_to", r"\b(?:unable to|can't|cannot|cant|can not|couldn't|couldnt|could not|won't let me|wont let me|not able to|impossible to)\s+(?:\w+ )?(?:log ?in|login|sign ?in|access|connect|download|install|update|view|send|stream|watch|print|register|subscribe|checkout|check out|complete|submit|upload|activate|redeem|reset|change my|verify|retrieve|track|use (?:the|my|your|it))\b", 0.7, "selfneg"),
        ("defect_words", r"\b(?:error(?: message| code)?s?|bug|bugs|buggy|glitch\w*|crash(?:es|ed|ing)?|freez(?:es|ing)|froze|malfunction\w*|defect(?:s|ive)?|faulty|stopped working|not working|doesn't work|outage|down again|keeps? (?:crashing|freezing|logging me out|failing|dropping|disconnecting|restarting|rebooting|cutting out|buffering))\b", 0.65, ""),
        ("broken_thing", r"\b(?:{PRODUCT}s?|it|screen|button|link|charger|zip|zipper|handle) (?:is |was |has |came |arrived |got )?(?:broken|broke|damaged|cracked|ripped|torn|scratched|fraying|split|faulty)\b|\b(?:broken|damaged|cracked|ripped|torn|faulty|defective) (?:{PRODUCT}s?|screen|button|link|charger|zip|zipper|handle|item|goods)\b", 0.75, ""),
        ("missing_feature", r"\b(?:missing|lacks?|lacking|no|doesn't have|does not have|without) (?:an? |the |any )?(?:\w+ ){0,2}(?:feature|option|functionality|support for|ability|integration|setting)s?\b", 0.65, "selfneg"),
        ("feature_request", r"\b(?:feature request|would be (?:nice|great|good) if|wish (?:it|you|there) (?:had|could|was|were|would)|please add|why (?:can't|cant|doesn't|doesnt|isn't|isnt|won't|wont) (?:it|you|the))\b", 0.55, "selfneg"),
        ("not_received", r"\b(?:still )?(?:{NEGAUX}) (?:\w+ ){0,2}(?:receiv(?:e|ed)|arriv(?:e|ed)|been delivered|delivered|got (?:my|the|it|our|a|any)|get (?:my|the|it|our|a|any)|gotten|shipped|turned up|showed up|come|dispatched|been sent)\b(?! (?:my |the |an? |any )?(?:\w+ )?(?:invoice|bill|receipt|statement|account)s?\b)", 0.75, "selfneg"),
        ("not_allowing", r"\b(?:not|won't|wont|doesn't|doesnt|isn't|isnt|aren't|arent|refus\w+ to|never) (?:\w+ )?(?:allow\w*|let(?:ting)?|accept\w*|recogni[sz]\w*) (?:me|us|you|it|my|the)\b", 0.75, "selfneg"),
        ("same_problem", r"\b(?:same|this|that|the|an?|my|our|login|log in|connection|technical|billing|ongoing|known|major|big|serious|another|these|those|new|weird|strange|recurring|similar|constant|continuous|persistent|huge) (?:issue|issues|problem|problems|prob|probs|glitch|fault|faults)\b", 0.6, ""),
        ("wrong_with", r"\b(?:something|what'?s|what is|anything|everything) (?:\w+ )?wrong with\b|\bgo(?:ne|es|ing)? wrong\b", 0.6, ""),
        ("not_right", r"\b(?:doesn't|does not|doesnt|isn't|is not|isnt|not|never) (?:\w+ )?(?:right|correct|valid|accurate|helpful|acceptable|fair)\b", 0.6, "selfneg"),
        ("refused_service", r"\b(?:won't|wont|will not|refus\w+ to|didn't|did not|wouldn't|would not) (?:\w+ )?(?:honou?r|cover|replace|refund|fix|repair|accept|exchange|help)\b|\b(?:warranty|claim|refund|return|request|card|payment|application)s? (?:\w+ )?(?:was |were |has been |got |being )?(?:denied|rejected|refused|declined)\b", 0.75, "selfneg"),
        ("too_slow", r"\b(?:so|very|too|really|super|painfully|extremely|ridiculously|incredibly) slow\b|\bslow as\b", 0.6, ""),
        ("constant_failure", r"\b(?:constantly|keeps?|always|still|continuously|repeatedly) (?:\w+ )?(?:rebooting|crashing|freezing|dropping|disconnecting|failing|buffering|restarting|logging (?:me )?out|breaking|cutting out|losing)\b", 0.7, ""),
        ("nothing_happens", r"\bnothing (?:happen\w*|works?|worked|changed|loads?)\b", 0.6, "selfneg"),
        ("struggle", r"\bstruggl(?:e|es|ed|ing) (?:to|with)\b", 0.5, ""),
        ("negated_state", r"\b(?:{NEGAUX}|not|(?<!have )(?<!got )(?<!ve )no(?! ?[.:#\d])(?! (?:worries|worry|problem|problems|rush|need|idea|thanks|doubt|luck|matter))|never|nothing|nobody|no one|none|zero)\b(?! (?:wait|say|believe|stop|resist|even|only|just|sure|mention|forget|ever|excuse|matter|fan|bad|kidding|joking|have|got|want|wanna|need|know|understand|remember|think|mind|like|happy|helping)\b)", 0.45, "selfneg chat svc"),
        ("out_of_stock", r"\b(?:out of stock|sold out|unavailable)\b", 0.5, "weak"),
        ("never_arrived", r"\b(?:never|still not|still hasn't|still hasnt|still haven't|still havent|yet to) (?:\w+ )?(?:arrived|came|come|showed up|turned up|been delivered|received|receive|arrive)\b", 0.8, "selfneg"),
        ("wrong_item", r"\b(?:wrong|damaged|missing|defective|faulty|incorrect|broken|used|dirty) (?:item|order|size|product|package|parcel|delivery|part|colou?r|goods|address|one|bits?)s?\b", 0.75, ""),
        ("late_delivery", r"\b(?:late|delayed|lost|missing) (?:delivery|order|shipment|package|parcel|item|paper|newspaper)s?\b|\b(?:delivery|order|shipment|package|parcel|paper) (?:\w+ ){0,2}(?:late|delayed|lost|missing|non[- ]?existent)\b", 0.75, ""),
        ("still_waiting", r"\bstill (?:waiting|not|no|nothing|haven't|havent|hasn't|hasnt|doesn't|doesnt|isn't|isnt|broken|having|getting|demanding|asking|showing)\b", 0.65, "selfneg"),
        ("keeps_doing", r"\bkeeps? (?:\w+ )?(?:logging|kicking|signing|telling|saying|asking|showing|giving|sending|charging|cancell?ing|dropping|crashing|failing)\b", 0.6, ""),
        ("problem_with", r"\b(?:problem|problems|issue|issues|trouble|troubles|difficulty|difficulties|fault)(?: i'm| i am| we're)? (?:with|on|using|accessing|logging|getting|connecting|ordering|finding) (?:your|the|my|our|this|a)\b", 0.7, "ask"),
        ("having_problems", r"\b(?:having|had|have|experiencing|found|finding|facing|got|get|getting)\w* (?:\w+ )?(?:problems?|issues?|trouble|difficult(?:y|ies)|errors?)\b", 0.6, ""),
        ("does_not_fit", r"\b(?:{NEGAUX}) fit\b|\btoo (?:small|large|big|tight|short|long|slim|narrow)\b|\bdifferent sizing\b", 0.5, "selfneg weak"),
        ("poor_quality", r"\b(?:poor|bad|terrible|awful|horrible|shocking|appalling|cheap|low|lousy|crap|rubbish) (?:build |product |print |sound |picture |signal )?quality\b", 0.75, ""),
        ("limitation", r"\b(?:limitation|shortcoming|drawback|disadvantage|weakness)s?\b", 0.5, "weak"),
    ],
    "blocker": [
        ("problem_onboarding", r"\b(?:problem|issue|trouble|error|difficult(?:y|ies)|stuck)s? (?:\w+ ){0,2}(?:sign(?:ing)? ?up|register\w*|registration|creat\w* (?:an? |my |the )?(?:\w+ )?(?:account|profile)|open\w* (?:an? |my |the )?(?:\w+ )?(?:account|profile)|onboard\w*|set(?:ting)?[- ]?up|install\w*|implement\w*|integrat\w*|migrat\w*|activat\w*|deploy\w*|configur\w*)\b", 0.8, "ask"),
        ("onboarding_failed", r"\b(?:sign(?:ing)? ?up|signup|registration|registering|onboarding|setup|set-?up|installation|implementation|integration|migration|activation|deployment)s? (?:\w+ ){0,2}(?:problem|issue|error|fail\w*|stuck|blocked|broken|not working|trouble)s?\b", 0.8, ""),
        ("cant_register", r"\b(?:unable to|can't|cannot|cant|couldn't|couldnt|could not|not able to)\s+(?:\w+ )?(?:sign ?up|register|create (?:an? |my )?(?:\w+ )?(?:account|profile)|open (?:an? |my )?(?:\w+ )?(?:account|profile)|set (?:it |this )?up|get (?:it |this )?(?:set up|installed|working|running)|proceed|move forward|go live|integrate|onboard)\b", 0.8, "selfneg"),
        ("blocked", r"\b(?:blocked|blocking|stuck|held up|holding (?:us|things|this|it|everything) up|roadblock|blocker|show-?stopper|bottleneck|dead ?end|stalled|standstill)\b", 0.6, "weak"),
        ("waiting_on_fix", r"\b(?:waiting (?:on|for) (?:a |the |your )?(?:fix|patch|resolution|workaround))\b", 0.7, ""),
    ],
    "competitor_mention": [
        ("switch_to_other", r"\b(?:switch|mov|go|migrat|chang|jump)(?:e|es|ed|ing|ping)? (?:over )?to (?:a |another |an |other |the )?(?:competitor|different (?:vendor|supplier|provider|company|carrier)|other (?:vendor|supplier|provider|company|carrier)s?|another (?:vendor|supplier|provider|company|carrier|bank|airline))\b", 0.85, ""),
        ("switch_to_named", r"\b(?:switch|switching|switched|moving|move|going) (?:over )?to @\w+", 0.75, ""),
        ("evaluate_alternatives", r"\b(?:evaluat|look|consider|talk|trial|test|explor|review|compar)\w* (?:at |to |into |with )?(?:other|alternative|competing|another|different|rival) (?:vendor|supplier|provider|solution|product|option|tool|platform|compan)\w*\b", 0.8, ""),
        ("competitor_word", r"\b(?:competitor|competitors|competition|competing (?:offer|bid|product|vendor)|rival|alternative (?:supplier|vendor|provider)s?)\b", 0.6, "weak"),
        ("look_elsewhere", r"\b(?:look|looking|go|going|shop|shopping) (?:elsewhere|around)\b", 0.7, ""),
        ("better_deal_elsewhere", r"\b(?:better|cheaper) (?:offer|deal|price|quote|service) (?:from|elsewhere|with) \w+", 0.7, ""),
        ("blaming_us", r"\b(?:blam(?:e|es|ed|ing)) (?:\w+ ){0,2}for (?:\w+ ){0,2}problems?\b", 0.4, ""),
    ],
    "pricing_objection": [
        ("too_expensive", r"\b(?:too|very|so|really|quite|overly|prohibitively|way too|extremely|pretty) (?:expensive|costly|pricey|pricy|dear|high-priced)\b|\b(?:overpriced|unaffordable|rip-?off|price gouging)\b", 0.8, ""),
        ("expensive", r"\b(?:expensive|costly|pricey)\b", 0.55, "weak"),
        ("price_up", r"\b(?:price|cost|fee|rate|pricing|quote|bill|premium|subscription)s? (?:\w+ ){0,3}(?:too high|increase[sd]?|increasing|hike[sd]?|went up|going up|gone up|goes up|doubled|tripled|is high|are high|outrageous|ridiculous|steep|higher than)\b", 0.75, ""),
        ("budget_problem", r"\b(?:budget (?:cut|constraint|freeze|limit|pressure|restriction|issue|problem|concern|shortfall|overrun)s?|over (?:the |our )?budget|out of (?:our )?budget|no budget|tight budget|budget is tight|exceed\w* (?:the |our )?budget|within (?:the |our )?budget|under budget|(?:the |our )?budget (?:is|was|of) (?:\w+ ){0,3}(?:\d|twelve|fifteen|twenty|fifty|hundred|thousand|million|euro))\b", 0.65, ""),
        ("cant_afford", r"\b(?:(?:can't|cannot|cant|can not|couldn't|unable to|not) afford|afford(?:able|ability)?)\b", 0.6, "selfneg"),
        ("discount", r"\b(?:discount|cheaper|lower (?:the )?price|reduce (?:the )?(?:price|cost)|price reduction|cost (?:down|reduction|cutting|saving)s?|cut(?:ting)? (?:the )?costs?|bring (?:the )?(?:price|cost)s? down|keep (?:the )?(?:price|cost)s? (?:down|low)|lower cost)\b", 0.55, "weak"),
        ("cost_figure", r"\b(?:cost|costs|costing|price|prices|priced|pricing)\b(?: \w+){0,4} (?:\d[\d.,]*|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|hundred)\b(?: \w+){0,2} (?:euros?|dollars?|cents?|pounds?|bucks)\b|\b(?:\d[\d.,]*|twelve|fifteen|twenty|fifty) (?:euros?|dollars?) (?:\w+ ){0,2}(?:cost|price|budget|limit|each|per)\b", 0.45, "weak"),
        ("hard_to_justify", r"\b(?:price|cost|costs|pricing|spend|fee|fees|renewal|invoice|seats?|licen[cs]es?)\b(?: [\w'-]+){0,8} (?:hard|difficult|tough|impossible) to justify\b|\b(?:hard|difficult|tough|impossible|can't|cannot|can not) (?:for (?:me|us|him|her|them) )?(?:to )?justify (?:\w+ ){0,3}(?:the |this |that |our |a )?(?:price|cost|costs|spend|renewal|invoice|seats?|licen[cs]es?|\d+|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred)\b", 0.75, ""),
        ("cost_talk", r"\b(?:cost(?:s|ing)?|price[sd]?|pricing|budget|euros?|cheap(?:er|est)?|expensive|money|afford\w*|production costs?|unit cost)\b", 0.35, "talk"),
        ("money_concern", r"\b(?:cost|costs|price|money)\b (?:\w+ ){0,3}(?:problem|issue|concern|constraint|limit|factor)s?\b|\b(?:the )?(?:cost|price) (?:is|was) (?:a|the) (?:problem|issue|concern)\b", 0.6, ""),
    ],
    "procurement_blocker": [
        ("review_delay", r"\b(?:legal|procurement|purchasing|security|compliance|contract|vendor|finance) (?:review|approval|sign-?off|process|team|department|requirements?|terms|negotiation|questionnaire)s? (?:\w+ ){0,4}(?:delay\w*|hold\w* up|held up|pending|waiting|stuck|block\w*|slow\w*|still|not (?:yet )?(?:approved|signed|done|complete))\b", 0.75, "selfneg"),
        ("waiting_on_legal", r"\bwaiting (?:on|for) (?:legal|procurement|purchasing|security|compliance|the contract|contract|(?:a |the )?signature|approval|sign-?off|(?:a |the )?po|(?:a |the )?purchase order|(?:the )?lawyers|counsel)\b", 0.75, ""),
        ("contract_pending", r"\b(?:contract|terms|msa|nda|dpa|sow|agreement)s? (?:is|are|was|were|has been|have been|still) (?:\w+ )?(?:not (?:yet )?signed|unsigned|under review|in review|with legal|stuck|on hold|pending)\b", 0.75, "selfneg"),
        ("redlines", r"\b(?:redlin\w+|red-?lines?|security (?:questionnaire|assessment|audit)|vendor (?:assessment|onboarding)|legal (?:hold-?up|issues?|concerns?|objections?))\b", 0.55, ""),
        ("regulatory_hold", r"\b(?:regulatory|board|legal|court) (?:approval|order|stay|injunction|ruling) (?:\w+ ){0,3}(?:required|pending|needed|delay\w*|block\w*|prevent\w*)\b", 0.55, ""),
    ],
    "champion_departed": [
        ("is_leaving", r"\b(?:is|has been|was|are|will be|am) (?:leaving|departing|retiring|moving on|stepping down|resigning|no longer (?:with|at|working|employed|in charge|responsible|on))\b", 0.75, ""),
        ("has_left", r"\b(?:has|had|have|just|recently) (?:left|quit|resigned|retired|departed) (?:the |our |his |her |their )?(?:company|firm|team|organi[sz]ation|role|position|job|group|business|account)?\b", 0.8, ""),
        ("last_day", r"\b(?:(?:my|his|her|their) last day|farewell|leaving (?:the company|us|our team|the firm)|new (?:assignment|role|position|job)(?: at| with| in)?|moving to (?:a new|another) (?:role|position|group|job))\b", 0.6, ""),
        ("resign", r"\b(?:resign(?:s|ed|ing|ation)|retire(?:s|d|ment)|stepp?(?:ed|ing)? down|laid off|let go|been fired|was fired|has been replaced)\b", 0.6, ""),
    ],
    "sponsor_disengaged": [
        ("delegate_away", r"\b(?:in my place|on my behalf|instead of me|delegat\w+ (?:this|it|that) to|(?:someone|somebody|one) (?:else )?(?:in|from) (?:your|my|the) (?:group|team) (?:should|could|can)|hand(?:ed|ing)? (?:this|it) off|will have to cover)\b", 0.65, ""),
        ("not_engaged", r"\b(?:no longer|not|isn't|is not|aren't|are not) (?:\w+ )?(?:interested|involved|engaged|sponsoring|supporting|championing|attending|a priority)\b", 0.5, "selfneg weak"),
        ("skipping_meetings", r"\b(?:skipp\w+|missed|missing|miss|didn't show up|did not show up|no-?show(?:ed)?)\b (?:the |our |a |his |her )?(?:last |recent |two |three |several )?(?:\w+ )?{MEETING}\b", 0.6, ""),
        ("lost_interest", r"\b(?:lost interest|losing interest|deprioriti[sz]\w+|back burner|not a priority|lower priority|pulled (?:back|out) of)\b", 0.65, ""),
    ],
    "stakeholder_change": [
        ("new_role", r"\b(?:new|incoming|interim|acting|newly appointed) (?:ceo|cfo|cio|cto|coo|vp|president|director|head|manager|leadership|management|owner|sponsor|decision[- ]maker|chair\w*|point of contact|contact person|lead|boss|team lead|executive|commissioner|administrator)s?\b", 0.7, ""),
        ("led_by", r"\b(?:will be|is being|has been|was|were|is now|are now|to be) (?:led|headed|run|managed|chaired|replaced|succeeded|taken over) by\b", 0.7, ""),
        ("taking_position", r"\b(?:will be|is|has been|are|am|was) (?:taking|assuming|stepping into|moving into|taking over) (?:a |the |an |his |her )?(?:new )?(?:position|role|job|responsibilit\w+|lead|leadership|post|seat)\b|\btak(?:e|es|ing|en) over (?:as|from|the role|responsibility|the account|leadership)\b", 0.75, ""),
        ("point_of_contact", r"\b(?:(?:the )?(?:new |main |primary )?point of contact|new contact|will (?:now )?be your (?:main )?contact|will be handling)\b", 0.55, ""),
        ("reorg", r"\b(?:reorg\b|reorgani[sz]ation|re-organi[sz]ation|restructur\w+|merger|acquired by|new reporting (?:line|structure)|new leadership|management change|leadership change|change (?:in|of) (?:leadership|management))\b", 0.55, ""),
        ("appointed", r"\b(?:appointed|named|promoted|hired|elected|nominated)(?: as| to| the)? (?:\w+ ){0,3}(?:ceo|cfo|cto|president|director|head|manager|vp|vice president|chair\w*|advisor|adviser|officer|lead|commissioner|secretary)\b|\b(?:joined|joins|joining) (?:us |the \w+ )?as\b", 0.7, ""),
        ("no_longer_contact", r"\bno longer (?:the )?(?:appropriate|right|responsible|correct|main) (?:person|contact|approver)\b|\bnot the (?:person|one) (?:to|who) approve\b", 0.7, "selfneg"),
        ("replaced", r"\b(?:replac(?:e|es|ed|ing)|succeed(?:s|ed|ing)?) (?:\w+ ){1,2}as\b", 0.6, ""),
    ],
    "unresponsive": [
        ("not_heard", r"\b(?:{NEGAUX}|not|still not|yet to) (?:yet )?(?:heard|hear|gotten|got|received|get|had) (?:back|anything|a (?:reply|response|call ?back|word|peep|answer)|any (?:reply|response|word|feedback|answer|update)|from)\b", 0.8, "selfneg"),
        ("no_reply", r"\b(?:no|zero|still no|not a single|never got a|never received a|without (?:a|any)) (?:reply|replies|response|responses|answer|call ?back|feedback|word|update)\b", 0.7, "selfneg"),
        ("awaiting", r"\b(?:still )?(?:awaiting|waiting (?:for|on)) (?:\w+ ){0,4}(?:reply|replies|response|answer|feedback|call ?back|impressions?|comments?|input|confirmation|word|update|decision|approval|to hear)\b", 0.7, ""),
        ("still_awaiting", r"\bstill (?:awaiting|waiting)\b", 0.55, ""),
        ("follow_up", r"\b(?:follow(?:ing)?[- ]up on|just following up|just checking in|circling back|any (?:update|news) on|a (?:gentle|friendly|quick) reminder)(?: about)? (?:my|the|our|your|this)? ?(?:\w+ ){0,2}(?:e-?mails?|messages?|notes?|voicemails?|requests?|letters?|invitations?|calls?|questions?|proposal|inquiry|enquiry)\b", 0.7, ""),
        ("not_responding", r"\b(?:not|no one|nobody|no-one|never|stopped) (?:\w+ )?(?:replying|responding|answering|returning (?:my|our) (?:calls|emails|messages)|getting back|got back|responded|replied|answered|called back)\b", 0.75, "selfneg"),
        ("didnt_respond", r"\b(?:{NEGAUX}|did not have time to) (?:\w+ ){0,2}(?:respond(?:ed)?|repl(?:y|ied)|answer(?:ed)?|get back|got back|call(?:ed)? back|return(?:ed)? (?:my|our) (?:call|email)s?)\b", 0.7, "selfneg"),
        ("ignored", r"\b(?:ignor(?:e|es|ed|ing) (?:my|our|me|us)|radio silence|gone (?:quiet|silent|dark)|went (?:quiet|silent|dark))\b", 0.75, ""),
        ("waited_long", r"\b(?:on hold|waiting|waited|been trying|been calling|still|trying) (?:\w+ ){0,3}(?:for )?(?:over |more than |like |almost |nearly |the last |the past )?(?:an?|\d+|two|three|four|five|six|several|many|few) (?:hours?|hrs?|days?|weeks?|months?)\b|\b(?:hours?|days?|weeks?|months?) (?:now|later|and (?:still|nothing|no))\b", 0.65, ""),
        ("answer_phone", r"\b(?:answer|pick up) (?:your|the) (?:phone|calls?|emails?|dms?)\b|\bno (?:call|email|reply|response|contact) (?:till|until|since|yet)\b", 0.65, ""),
        ("uncertain_intent", r"\b(?:remain|still) (?:uncertain|unsure|unclear|not sure) (?:whether|if)\b", 0.5, ""),
    ],
    "meeting_cancelled": [
        ("cancel_meeting", r"\b(?:cancel|postpon|reschedul|push|mov|delay|call)(?:e|es|ed|led|ing|ling|ed)? (?:back |off )?(?:\w+ ){0,3}{MEETING}\b", 0.75, ""),
        ("meeting_cancelled", r"\b{MEETING} (?:\w+ ){0,3}(?:has been |have been |was |is |will be |is being |were |are |got |been )?(?:cancell?ed|postponed|rescheduled|called off|pushed back|pushed out|delayed|moved|off)\b", 0.75, ""),
        ("cant_attend", r"\b(?:won't|will not|wont|cannot|can't|cant|unable to|not be able to|won't be able to|will be unable to|am unable to|couldn't|could not|not going to) (?:\w+ ){0,2}(?:attend|make it|join|participate|be there|come|make the|be present|be available)\b", 0.75, "selfneg"),
        ("decline", r"\b(?:declin\w+|regretfully decline|send (?:my )?regrets) (?:the |your |this |an |our )?(?:invitation|invite|meeting|offer|request)\b|\b(?:have to|need to|going to have to|must|will have to) (?:pass|decline|miss)\b|\bsit (?:this|it) out\b", 0.75, ""),
        ("hold_off", r"\bhold off\b", 0.5, ""),
        ("not_available", r"\b(?:not|isn't|is not|am not|are not|won't be|will not be|un)\s?available (?:on |these |those |that |for |at |then|this|next)?(?:dates?|days?|times?|then|that|week|weekend|afternoon|morning|monday|tuesday|wednesday|thursday|friday)?\b", 0.55, "selfneg weak"),
        ("conflict", r"\b(?:scheduling conflict|(?:have|got) a conflict|double[- ]booked|something came up|can't make (?:it|the))\b", 0.7, ""),
    ],
    "executive_engagement": [
        ("exec_will_attend", r"\b{EXEC}\b(?:\W+\w+){0,6}?\W+(?:will|would|to|has agreed to|agreed to|plans to|wants to|is going to|shall|would like to|is happy to) (?:\w+ )?(?:attend|join|sponsor|endorse|support|speak|phone|call|present|participate|meet|champion|host|kick off|lead|visit|open)\b", 0.6, ""),
        ("ask_exec", r"\b(?:would like|want|asked|ask|invite|invited)\w* (?:\w+ ){1,3}to (?:phone|call|meet|visit|join|address|speak to|solicit)\b(?:\W+\w+){0,5}\W+{EXEC}\b", 0.55, ""),
        ("exec_sponsor", r"\b(?:executive|exec|leadership|c-level|c-suite|board)[- ](?:sponsor\w*|buy-?in|support|endorsement|briefing|engagement)\b", 0.65, ""),
        ("will_join", r"\bi (?:shall|will|would be happy to|am happy to|'d be happy to|'ll|would be delighted to|am delighted to) (?:gladly )?(?:join|attend|participate|speak|host|sponsor)\b", 0.45, ""),
        ("point_of_contact_exec", r"\basked to be the (?:point of contact|lead|sponsor)\b", 0.55, ""),
    ],
    "goal_defined": [
        ("our_goal", r"\b(?:our|the|my|their|key|main|primary|overall|business|ultimate) (?:goal|objective|aim|target|priority|success criteri\w+|kpi|mission|purpose)s? (?:is|are|was|will be|here is|for \w+ is)\b", 0.75, ""),
        ("want_to_achieve", r"\b(?:we|i|they) (?:want|need|aim|plan|hope|intend|expect|are trying|are aiming) to (?:achieve|reach|hit|increase|reduce|improve|grow|cut|lower|double|deliver|get to|have it done|launch|complete)\b", 0.6, ""),
        ("goal_of", r"\b(?:goal|objective|target|aim) (?:of|to|is to)\b", 0.6, ""),
        ("will_result", r"\bwill (?:result in|provide|deliver|lead to) (?:\w+ ){0,3}(?:lower|higher|increased|reduced|improved|better|direction)\b", 0.55, ""),
        ("success_criteria", r"\b(?:success (?:criteria|metric|measure)s?|kpis?|key performance indicators?)\b", 0.6, ""),
        ("requirement", r"\b(?:the |our |main |key )?requirements? (?:is|are|was|were) (?:that|to)\b|\bit (?:has|needs|have) to be\b|\bwe (?:should|need to|have to|must|want to) (?:aim|target|focus on)\b", 0.45, ""),
    ],
    "milestone_achieved": [
        # "go live"/"going live" alone is a plan, not an achievement ("we were meant to go live in June")
        ("went_live", r"\b(?:went|gone|is now|are now|finally) live\b|\bgo-live (?:was|is|has been) (?:complete|done|successful|a success)\b|\bgo-live (?:happened|went (?:well|smoothly|fine))\b", 0.8, ""),
        ("project_complete", r"\b(?:rollout|roll-out|deployment|implementation|migration|integration|project|phase|installation|upgrade|pilot|onboarding|launch|transaction|deal|acquisition|merger|construction) (?:\w+ ){0,2}(?:is|was|has been|have been|are|were) (?:now |successfully |finally )?(?:complete|completed|done|finished|live|successful|closed|signed|approved)\b", 0.8, ""),
        ("reached_agreement", r"\b(?:reached|signed|approved|closed|finali[sz]ed|executed|secured|concluded|struck)\w* (?:an |the |a |our |their )?(?:\w+ )?(?:agreement|deal|contract|settlement|memorandum)\b", 0.7, ""),
        ("approval_received", r"\b(?:approval|sign-?off|green light|go-ahead|financing|funding)s? (?:\w+ )?(?:was |has been |have been )?(?:received|granted|given|obtained|secured|closed)\b|\bfinancially closed\b", 0.7, ""),
        ("completed_thing", r"\b(?:completed|finished|delivered|launched|achieved|reached|hit|passed|shipped|rolled out)\b (?:\w+ ){0,3}(?:milestone|project|phase|rollout|deployment|migration|implementation|go-live|target|goal|release|version)s?\b", 0.7, ""),
        ("we_decided", r"\b(?:we|they|i|the board|the committee|the team|everyone|everybody|it|that)(?: have| 've|'ve| has| 's|'s| had| was| is)? (?:been )?(?:decided|agreed|concluded|settled on|chose|chosen|opted)\b", 0.6, ""),
        ("decision_made", r"\b(?:the |a |final |our )?decision (?:is|was|has been|had been) (?:made|taken|reached|to|that)\b|\b(?:made|reached|took) (?:a |the |our |final )?(?:final )?decision\b", 0.65, ""),
        ("go_with", r"\b(?:we're|we are|we'll|we will|let's|let us|we should|so we) (?:just )?(?:go(?:ing)? with|stick with|stay with|settle on|agree on|decide on|keep)\b", 0.45, ""),
        ("decision_talk", r"\b(?:we(?:'ll| will| should|'re gonna| are gonna| are going to| need to| have to| must|'ve got to)|let's|let us|so we) (?:\w+ ){0,2}(?:go (?:for|with)|stick (?:to|with)|settle (?:on|for)|choose|pick|opt for|agree on|decide on)\b", 0.4, "talk"),
        ("agreed_word", r"\b(?:agreed|consensus|decided|decision)\b", 0.35, "weak"),
        ("developed", r"\b(?:we have|we've|have now|has now|has successfully|have successfully|successfully) (?:developed|built|delivered|launched|completed|implemented|deployed|finished)\b", 0.55, ""),
    ],
    "milestone_missed": [
        ("project_delayed", r"\b(?:project|launch|go-live|rollout|release|delivery|deadline|implementation|migration|schedule|timeline|milestone|phase|completion|shipment|upgrade)s? (?:\w+ ){0,3}(?:(?:is|was|has been|have been|will be|are|were) )?(?:delayed|slipp\w*|slid|pushed (?:out|back)|postponed|at risk|missed|behind|late)\b", 0.75, ""),
        ("behind_schedule", r"\b(?:behind schedule|missed (?:the |our |a |another )?(?:deadline|due date|date|milestone|target|window|cut-?off)|(?:running|fallen|falling|fell) behind|past (?:the )?deadline|overdue)\b", 0.75, ""),
        ("delay_of", r"\b(?:delay|delays|slippage) (?:in|to|of|on) (?:the |our )?(?:project|launch|go-live|rollout|release|delivery|implementation|migration|schedule|completion|construction)\b", 0.75, ""),
        ("sorry_late", r"\b(?:sorry|apologi[sz]e\w*) (?:\w+ ){0,4}(?:late|delay\w*|tardy)\b", 0.5, ""),
        ("planned_but_not", r"\b(?:were|was|are|is|had been) (?:supposed|meant|planned|scheduled|due|expected) to (?:\w+ ){0,2}(?:go live|launch|ship|finish|complete|deliver|roll (?:it |this |that )?out|be (?:live|ready|done|finished))\b[^.;!?]{0,80}?\b(?:but|however|not going to happen|won't|will not|isn't going to|slipp\w*|delayed|pushed|late)\b", 0.75, ""),
        ("slipped_to", r"\b(?:slipped|slipping|slips|pushed|postponed|delayed|moved) (?:back |out )?(?:to|until|till|into) (?:(?:early|mid|late|the end of|end of) )?(?:january|february|march|april|may|june|july|august|september|october|november|december|next (?:week|month|quarter|year)|q[1-4])\b", 0.7, ""),
        ("wont_be_ready", r"\b(?:won't|will not|not going to|wont|unable to|can't|cannot) (?:\w+ ){0,1}(?:be ready|make (?:it in time|the deadline|the date)|meet (?:the |our )?(?:deadline|date|target|timeline)|finish (?:on|in) time)\b", 0.75, "selfneg"),
    ],
    "value_confirmed": [
        ("saved", r"\b(?:saved|saving|saves|save) (?:us |me |our \w+ )?(?:\$?\d[\d,.]*\s*(?:%|percent|k|m|million|hours?|days?|dollars)?|(?:a lot of |lots of |so much |significant |considerable |hours of )?(?:time|money|hours|effort))\b", 0.7, ""),
        ("roi", r"\b(?:roi|return on (?:our )?investment|paid for itself|pays for itself|worth (?:every|the) (?:penny|cent|investment|money)|(?:huge|big|real|significant|great|measurable|tangible|concrete|positive) (?:difference|impact|improvement|benefit|value|win|results?))\b", 0.7, ""),
        ("improved_by", r"\b(?:increased|improved|reduced|cut|boosted|lowered|grew|doubled) (?:our |the )?(?:\w+ ){0,2}(?:by \d+\s*(?:%|percent|x)|significantly|dramatically|substantially)\b", 0.7, ""),
        ("made_difference", r"\b(?:has|have|had) (?:made|had|caused) a (?:significant|big|huge|real|positive|major|great) (?:impact|difference|stir|improvement|contribution)\b", 0.65, ""),
        ("helped", r"\b(?:really|definitely|clearly|greatly|tremendously) (?:helped|helps|works|paid off|improved)\b|\b(?:made|makes) (?:our|my) (?:life|lives|job|jobs|work) (?:much |so |a lot )?easier\b", 0.6, ""),
    ],
    "expansion_interest": [
        ("more_seats", r"\b(?:more|additional|extra|another) (?:\d+ )?(?:seats?|licen[cs]es?|users?|teams?|departments?|sites?|modules?|capacity|volume|locations?|instances?)\b", 0.6, ""),
        ("upgrade_expand", r"\b(?:upgrad(?:e|ing) (?:to|our|the) (?:\w+ )?(?:plan|tier|package|edition|version|enterprise|premium|pro)|expand(?:ing)? (?:our |the )?(?:use|usage|contract|deployment|rollout|relationship|footprint|engagement)|scale up|scaling up|add(?:ing)? (?:\w+ ){0,2}(?:seats|licenses|licences|users|teams|sites|modules)|roll(?:ing)? (?:it |this )?out to (?:\w+ ){0,2}(?:teams?|departments?|offices|sites|regions|the rest))\b", 0.65, ""),
        ("interested_in_more", r"\b(?:interested in|like to (?:talk|learn|hear)(?: to us)? about|explore|exploring|looking (?:at|into)|talk to us about) (?:\w+ ){0,3}(?:your |the |an? )?(?:other |additional |new |more )?(?:products?|services?|offerings?|plans?|modules?|premium|enterprise|procurement|solutions?|opportunit(?:y|ies)|partnership)\b", 0.55, ""),
        ("bigger_plan", r"\b(?:bigger|larger|higher|enterprise|premium) (?:plan|tier|package|edition|contract|order)\b|\badditional \$?\d[\d,.]*\b", 0.55, ""),
        ("outsource", r"\b(?:opportunit(?:y|ies) to out-?sourc\w*|out-?sourc\w* (?:some|all|more))\b", 0.5, ""),
    ],
}
# fmt: on

# ----------------------------------------------------------------------------------------- sentiment lexicon
# word/phrase regex -> weight (negative = negative sentiment). Matched on whole words of the normalised sentence.
NEGATIVE_LEXICON: Final[dict[str, float]] = {
    r"hate[sd]?|hating": 2.0,
    r"furious|fuming|livid|outraged|outrageous|outrage|enraged|infuriat\w+|incensed": 2.2,
    r"disgust\w*|appall\w*|horrible|horrendous|horrific|terrible|terribly|awful|atrocious|dreadful": 2.0,
    r"worst|pathetic|unacceptable|ridiculous|disgrace\w*|shocking|shameful|scandalous|abysmal|laughable": 2.0,
    r"useless|incompetent|incompetence|rubbish|garbage|trash|junk|crap|crappy|shitty|shittiest|shit|sucks|suck|sucked|worse": 1.8,
    r"scam|rip-?off|ripped off|con artists?|robbery|daylight robbery|nightmare|disaster|disastrous|fiasco|catastroph\w*": 1.8,
    r"fed up|sick of|sick and tired|tired of|had enough|enough is enough|never again|fool me": 2.0,
    r"frustrat\w+|annoy\w*|irritat\w+|aggravat\w+|exasperat\w+|pissed(?: off)?|mad at|angry|anger|angered|upset|upsetting": 1.8,
    r"disappoint\w*|dissatisf\w+|unhappy|unsatisf\w+|discontent\w*|displeased|let(?:ting)? (?:me |us )?down|letdown": 1.8,
    r"worthless|misery|miserable|regretful|regret(?:s|ted)?|unclear|confus(?:ing|ed)|embarrass\w*|ashamed|invisible|ignored": 1.2,
    r"ballistic|worked up|oh dear|unproductive|counterproductive|counter-productive|grief|dismal|bleak|pessimis\w+|gloomy|irate|agitated|resent\w*|bitter(?:ly|ness)?|fed-up": 1.5,
    r"surprised (?:that|to (?:hear|see|learn|find))|shocked|stunned|baffled|puzzled|perplexed|bothers? me|bothered|disheartening|discourag\w+": 1.3,
    r"worr(?:y|ied|ies|ying|isome)|anxious|anxiety|nervous|fear(?:s|ful|ed)?|afraid|scared|alarm(?:ed|ing)|panic\w*|dread": 1.5,
    r"concerned|troubl(?:ed|ing|esome)|disturb(?:ed|ing)|uneasy|skeptical|sceptical|wary|dismay\w*|distress\w*": 1.6,
    r"(?:my|our|serious|real|major|big|grave|growing|deep) concerns?|concerns? (?:about|over|regarding|that|with)": 1.5,
    r"sad|sadly|saddened|depress\w+|heartbroken|miserable|unfortunate|unfortunately|regrettabl[ey]|sorry to (?:hear|say|report|see)": 1.2,
    r"poor|poorly|bad|badly|lousy|mediocre|inadequate|unreliable|sloppy|shoddy|unprofessional|rude|unhelpful|careless": 1.2,
    r"mess|messed up|screwed(?: up)?|botched|chaos|chaotic|harm(?:ed|ful)|hurt|painful|pain": 1.0,
    r"crisis|crises|damag(?:e|ed|ing)|blackouts?|bankrupt\w*|downgrad\w*|turmoil": 0.6,
    r"wrong|fail(?:s|ed|ing|ure)?|broken|problem(?:s|atic)|struggl\w+|complain\w*|waste(?:d)?|wasting|blam(?:e|es|ed|ing)": 0.8,
    r"stupid|idiot\w*|dumb|lame|joke|clowns?|morons?|bullshit|bs|wtf|ffs|smh|ugh+|argh+|grr+|damn|dammit|hell|fuck\w*|bloody": 1.2,
    r"slow|delay(?:s|ed)?|late|again|still|yet again|unfair|misleading|lied|lying|liars?|cheat\w*|greedy|shame": 0.5,
    r"doubt(?:s|ful)?|difficult|hard time|headache|hassle|pain in the|not impressed|not happy|not pleased|not satisfied": 1.0,
    r":\(|:-\(|:'\(|>:\(|d:|: \(": 1.5,
    r"\?\?+|!\?|\?!|!!+": 0.5,
}
POSITIVE_LEXICON: Final[dict[str, float]] = {
    r"excellent|outstanding|superb|terrific|fantastic|wonderful|awesome|amazing|brilliant|phenomenal|stellar|exceptional": 1.8,
    r"first[- ]rate|top[- ]notch|world[- ]class|great job|good job|nice job|great work|good work|nice work|well done|job well done|bravo|kudos|hats off": 2.2,
    r"(?:good|great|excellent|interesting|nice|brilliant) (?:idea|point|suggestion|news|fixes|call|question|presentation|discussion|meeting|catch)": 2.0,
    r"congratulations|congrats|congratulate": 1.8,
    r"thank(?:s| you) (?:so much |very much |a lot |again |kindly )?(?:for|to) (?:\w+ ){0,3}(?:help|helping|your|the|taking|stepping|joining|doing|making|coming|all|everything|support|getting|putting|sending|being|quick|great|excellent)": 1.6,
    r"(?:many|special|big|huge|sincere|heartfelt) thanks|thanks a million|much appreciated|greatly appreciated|really appreciate\w*": 1.6,
    r"appreciat(?:e|ed|es|ion|ive)|grateful|gratitude|thankful": 1.5,
    r"love[sd]?|loving|adore|delight(?:ed|ful)?|thrilled|excited|exciting|ecstatic|overjoyed|happy|glad|pleased|pleasure|enjoy(?:ed|ing)?": 1.3,
    r"impress(?:ed|ive)|remarkable|incredible|beautiful|lovely|perfect|perfectly|splendid|fabulous|marvell?ous|memorable|extraordinary": 1.3,
    r"great|good|nice|helpful|smart|capable|knowledgeable|talented|honou?rable|hard[- ]working|innovative|valuable|useful|best|better|cool": 0.8,
    r"satisf(?:ied|ying)|recommend(?:ed)?|success(?:ful|fully)?|well received|positive feedback|good comments|good things": 1.0,
    r"proud|pleasure working|pleasure to work|enjoyed working|look(?:ing)? forward": 0.9,
    r":\)|:-\)|:d|;\)|<3": 1.2,
}
# Phrases that look polar but are not ("no problem", polite "I'm afraid", sign-off thanks).
NEUTRALISERS: Final[tuple[str, ...]] = (
    r"no (?:problem|problems|worries|worry|concerns?|issues?)",
    r"not (?:a|any) (?:problem|issue|concern)",
    r"(?:don't|dont|do not|no need to|never) worry",
    r"i'?m afraid (?:that |i |we |it |this |not )",
    r"good (?:morning|afternoon|evening|night|luck|bye)",
    r"(?:look(?:ing)? forward to (?:hearing|seeing|talking|meeting|speaking|your))",
    r"best (?:regards|wishes)|kind regards|warm regards",
    r"(?:as|so) good as|good enough|pretty good chance|for good",
    r"concerning|as far as \w+ concerned|to whom it may concern",
    r"(?:would|will|should) be (?:great|good|nice|happy|glad|pleased)",
    r"happy (?:to|birthday|holidays|new year|hour)|glad to (?:help|hear|see)|please let me know",
    r"still (?:be|have|need|want|is|are|on|in|think|like)",
    r"last (?:but|week|night|time|year|month)",
)
NEGATORS: Final[str] = (
    r"(?:not|no|never|n't|nt|without|hardly|barely|nothing|none|nobody|neither|nor|cannot|cant|dont|doesnt|didnt|"
    r"isnt|wasnt|arent|werent|wont|lack|lacks|lacking|less|least)"
)
INTENSIFIERS: Final[str] = (
    r"(?:very|really|so|extremely|incredibly|totally|completely|absolutely|utterly|truly|deeply|highly|most|"
    r"super|seriously|terribly|awfully|particularly|especially|increasingly|quite|fucking|bloody|such|too)"
)
HEDGES: Final[str] = (
    r"(?:if|might|may|maybe|perhaps|possibly|probably|could|would|unless|whether|in case|consider(?:ing)?|"
    r"thinking (?:about|of)|wonder(?:ing)?|potential(?:ly)?|hypothetical(?:ly)?|rumou?rs?|seems?|appears?)"
)
REPORTED: Final[str] = (
    r"(?:(?:he|she|they|someone|somebody|people|\w+) (?:said|says|say|told|tells|claimed|claims|reported|reports|"
    r"mentioned|heard|hearing|believes?|thinks?|added|noted|wrote|commented)\b(?: that)?"
    r"|^[\"'`]|[,.]\"? (?:he|she|they|\w+) (?:said|says|added|noted|wrote)\b|according to)"
)
# Words that show a chat message is about a product or service (a customer speaking to a vendor).
SERVICE_CONTEXT: Final[str] = (
    r"(?:order(?:ed|s)?|deliver\w*|shipp\w*|parcel|package|refund\w*|customer (?:service|care|support)|"
    r"service|support|account|app|website|site|online|subscription|bill\w*|charg\w*|payment|card|purchas\w*|"
    r"bought|buy|return\w*|receipt|store|shop|item|product|replacement|warranty|driver|update|install\w*|"
    r"log ?in|sign ?in|password|connection|internet|wifi|signal|network|router|phone|laptop|tablet|ipad|iphone|"
    r"tv|cable|broadband|outage|error|crash\w*|bug|flight|seat|bag(?:gage)?|luggage|ticket|booking|hotel|"
    r"staff|agent|representative|manager|branch|bank|fees?|price|paper|newspaper|digital|download\w*|"
    r"game|graphics? card|gpu|dress|jeans|size|fabric|stock|car|engine|vehicle|brakes?|tires?|tyres?|dealer\w*|"
    r"mechanic|repair\w*|train|bus|plane|airline|airport|gate|delay\w*|cancell?ed|reply|response|dm|email|"
    r"quality|employees?|flights?|polic(?:y|ies)|manual|label|tracking|membership|plan|data|"
    r"@\w*(?:support|help|care|cares|service|custserv|team)|@ask\w+|"
    r"call cent(?:re|er)|helpline|printer|cartridge|battery|charger|screen|firmware|server|instance|stream\w*)"
)

# A sentence that reports the problem as solved is not a live problem ("thanks for resolving my issue").
RESOLUTION: Final[str] = (
    r"(?:resolv(?:ed|ing)|resolution|solved|solving|fix(?:ed|ing)|sort(?:ed|ing)(?: out)?|(?:working|works) (?:again|now|fine|perfectly)|"
    r"back (?:up|online|to normal)|no longer (?:an issue|a problem))"
)

# The writer's own voice: first or second person. Sentiment in third-person narrative (a forwarded news
# story, "environmentalists worry that ...") says little about the writer's relationship.
VOICE: Final[str] = r"(?:i|i'm|im|i've|i'd|i'll|we|we're|we've|we'd|we'll|me|my|mine|our|ours|us|you|your|you're|yours)"
